"""kdebug.kube.shapes: what the client accepts of an answer (the hostile cases over a socket are in
tests/hostile/test_api.py; these are the rules themselves, table by table)."""

from __future__ import annotations

from typing import Any

import pytest

from kdebug.errors import ApiError
from kdebug.kube.shapes import checked_answer, checked_event

POD_PATH = "/api/v1/namespaces/demo/pods/web"
POD: dict[str, Any] = {
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}, "ownerReferences": [{"uid": "1"}]},
    "spec": {"containers": [{"name": "app", "image": "x"}]},
    "status": {"containerStatuses": [{"name": "app", "state": {"running": {}}}]},
}


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        (POD_PATH, POD),
        ("/api/v1/namespaces/demo/pods", {"metadata": {"resourceVersion": "3"}, "items": [POD]}),
        ("/api/v1/namespaces/demo", {"metadata": {"name": "demo", "labels": {}}}),
        ("/x", {}),
        (POD_PATH, {"kind": "Status", "status": "Success"}),  # a deletion's answer
        ("/apis/apps/v1/namespaces/d/deployments/w", {"metadata": {"name": "w"}, "spec": {"selector": {}}}),
    ],
    ids=["a pod", "a list of pods", "a namespace", "an empty answer elsewhere", "a Status", "a deployment"],
)
def test_answers_of_the_api_shape_pass_unchanged(path: str, answer: dict[str, Any]) -> None:
    assert checked_answer(answer, "GET", path) is answer


@pytest.mark.parametrize(
    ("path", "answer", "words"),
    [
        (POD_PATH, {}, "not a valid Pod: metadata is missing"),
        (POD_PATH, {**POD, "metadata": {"labels": {}}}, "metadata.name is missing"),
        (
            POD_PATH,
            {**POD, "metadata": {"name": "web", "labels": {"a": 1}}},
            "metadata.labels[a] must be a string",
        ),
        (
            "/api/v1/namespaces/demo/pods",
            {"items": [{"metadata": {}, "spec": {}}]},
            "items[0].metadata.name is missing",
        ),
        ("/api/v1/namespaces/demo/pods", {"items": {}}, "items must be a list"),
        ("/x", {"status": {"userInfo": []}}, "status.userInfo must be an object"),
        (
            "/apis/apps/v1/namespaces/d/deployments/w",
            {"metadata": {"name": "w"}, "spec": {"selector": {"matchExpressions": ["k"]}}},
            "spec.selector.matchExpressions[0] must be an object",
        ),
    ],
    ids=[
        "no metadata",
        "no name",
        "a label not a string",
        "an unnamed item",
        "items not a list",
        "userInfo a list",
        "a selector expression not an object",
    ],  # fmt: skip
)
def test_a_wrong_shape_is_one_api_error_naming_the_field(path: str, answer: Any, words: str) -> None:
    with pytest.raises(ApiError) as raised:
        checked_answer(answer, "GET", path)
    assert words in raised.value.message


def test_a_bookmark_on_a_pod_watch_needs_only_its_resource_version() -> None:
    event = {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "9"}}}
    assert checked_event(event, "/api/v1/namespaces/demo/pods") is event


def test_a_modified_event_on_a_pod_watch_must_carry_a_pod() -> None:
    event = {"type": "MODIFIED", "object": {"metadata": {"resourceVersion": "9"}}}
    with pytest.raises(ApiError, match="spec is missing"):
        checked_event(event, "/api/v1/namespaces/demo/pods")
