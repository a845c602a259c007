"""Copies of a pod for debugging: name, labels, metadata, command replacement, leftovers."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from kdebug.debug.copy_spec import (
    build_copy_pod,
    copy_pod_name,
    is_kdebug_copy,
    labels_breaking_selectors,
    leftover_copies,
)
from tests.fixtures.pods import build_pod, container, owner

CREATED = datetime(2026, 11, 27, 6, 30, 0, tzinfo=UTC)
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}

DEBUGGER = {
    "name": "kdebug-bcdfg",
    "image": "docker.io/library/busybox:1.36.1",
    "command": ["sh"],
    "targetContainerName": "app",
    "stdin": True,
    "tty": True,
    "terminationMessagePolicy": "File",
    "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
}


def make_pod(name: str = "shop-7d9f8c6b5-x2x7q") -> dict:
    """A pod as the API returns it for a Deployment's replica."""
    return build_pod(
        name=name,
        namespace="lab",
        uid="0b5c3c1e-8d41-4c39-9a43-2f1c0d1b9f00",
        created="2026-11-26T10:00:00Z",
        labels={"app": "shop", "tier": "web", "pod-template-hash": "7d9f8c6b5"},
        annotations={"team": "payments", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        owners=[owner("ReplicaSet", "shop-7d9f8c6b5", apiVersion="apps/v1")],
        metadata_extra={
            "generateName": "shop-7d9f8c6b5-",
            "resourceVersion": "4711",
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        node_name="node-1",
        restart_policy="Always",
        containers=[
            container(
                "app",
                "gcr.io/distroless/static-debian12",
                command=["/shop"],
                args=["--port", "8080"],
                livenessProbe=PROBE,
                readinessProbe=PROBE,
                startupProbe=PROBE,
            ),
            container("sidecar", "envoy", readinessProbe=PROBE),
        ],
        ephemeral_containers=[container("kdebug-old", "busybox", targetContainerName="app")],
        phase="Running",
        status_extra={"podIP": "10.0.0.5"},
    )


def build(pod: dict | None = None, **kwargs) -> dict:
    arguments = {"suffix": "k3x9z", "session_id": "s-0001", "created_at": CREATED, **kwargs}
    return build_copy_pod(pod or make_pod(), "app", DEBUGGER, **arguments)


def test_whole_copy_pod() -> None:
    assert build(labels_to_drop=["app"]) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "shop-7d9f8c6b5-x2x7q-kdebug-k3x9z",
            "namespace": "lab",
            "labels": {"tier": "web", "kdebug.dev/copy-of": "shop-7d9f8c6b5-x2x7q"},
            "annotations": {
                "team": "payments",
                "kdebug.dev/session-id": "s-0001",
                "kdebug.dev/created-at": "2026-11-27T06:30:00Z",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "shareProcessNamespace": True,
            "containers": [
                make_pod()["spec"]["containers"][0],
                make_pod()["spec"]["containers"][1],
                {k: v for k, v in DEBUGGER.items() if k != "targetContainerName"},
            ],
        },
    }


@pytest.mark.parametrize(
    ("labels_to_drop", "expected_labels"),
    [
        pytest.param(
            (),
            {"app": "shop", "tier": "web", "kdebug.dev/copy-of": "shop-7d9f8c6b5-x2x7q"},
            id="only controller labels dropped by default",
        ),
        pytest.param(
            ("app", "tier"),
            {"kdebug.dev/copy-of": "shop-7d9f8c6b5-x2x7q"},
            id="owner selector labels dropped",
        ),
    ],
)
def test_labels(labels_to_drop: tuple[str, ...], expected_labels: dict) -> None:
    assert build(labels_to_drop=labels_to_drop)["metadata"]["labels"] == expected_labels


@pytest.mark.parametrize(
    "label",
    ["controller-revision-hash", "statefulset.kubernetes.io/pod-name", "batch.kubernetes.io/job-name"],
)
def test_other_controller_labels_are_dropped(label: str) -> None:
    pod = make_pod()
    pod["metadata"]["labels"][label] = "x"
    assert label not in build(pod)["metadata"]["labels"]


@pytest.mark.parametrize(
    ("pod_name", "suffix", "expected"),
    [
        pytest.param("web", "abcde", "web-kdebug-abcde", id="short name"),
        pytest.param("a" * 63, "abcde", "a" * 50 + "-kdebug-abcde", id="long name cut to 63"),
        pytest.param("a" * 49 + "-bbb", "abcde", "a" * 49 + "-kdebug-abcde", id="no dash before the infix"),
    ],
)
def test_copy_pod_name(pod_name: str, suffix: str, expected: str) -> None:
    name = copy_pod_name(pod_name, suffix)
    assert name == expected and len(name) <= 63


def test_command_replaced_and_probes_removed_on_the_target_only() -> None:
    containers = build(copy_command=["sleep", "infinity"])["spec"]["containers"]
    assert containers[0] == {
        "name": "app",
        "image": "gcr.io/distroless/static-debian12",
        "command": ["sleep", "infinity"],
    }
    assert containers[1] == {"name": "sidecar", "image": "envoy", "readinessProbe": PROBE}


def test_without_copy_command_probes_stay() -> None:
    assert build()["spec"]["containers"][0]["livenessProbe"] == PROBE


@pytest.mark.parametrize(
    ("same_node", "expected"),
    [pytest.param(False, None, id="scheduled anew"), pytest.param(True, "node-1", id="same node kept")],
)
def test_node_name(same_node: bool, expected: str | None) -> None:
    assert build(same_node=same_node)["spec"].get("nodeName") == expected


def test_source_pod_is_left_alone() -> None:
    pod = make_pod()
    build(pod, copy_command=["sleep", "infinity"], labels_to_drop=["app"])
    assert pod == make_pod()


def test_debug_container_is_left_alone() -> None:
    before = copy.deepcopy(DEBUGGER)
    build()
    assert before == DEBUGGER


def copy_created(minutes_ago: int, now: datetime, name: str) -> dict:
    return build(make_pod(name), created_at=now - timedelta(minutes=minutes_ago))


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(build(), True, id="a copy"),
        pytest.param(make_pod(), False, id="the original"),
        pytest.param(
            {"metadata": {"labels": {"kdebug.dev/copy-of": "x"}}}, False, id="label without session"
        ),
    ],
)
def test_is_kdebug_copy(pod: dict, expected: bool) -> None:
    assert is_kdebug_copy(pod) is expected


def test_leftover_copies_oldest_first_and_only_old_copies() -> None:
    now = CREATED + timedelta(hours=3)
    pods = [
        copy_created(30, now, "young"),
        copy_created(180, now, "oldest"),
        make_pod("not-a-copy"),
        copy_created(90, now, "old"),
    ]
    names = [p["metadata"]["name"] for p in leftover_copies(pods, now, timedelta(hours=1))]
    assert names == ["oldest-kdebug-k3x9z", "old-kdebug-k3x9z"]


def test_leftover_falls_back_to_creation_timestamp() -> None:
    pod = build()
    del pod["metadata"]["annotations"]["kdebug.dev/created-at"]
    pod["metadata"]["creationTimestamp"] = "2026-11-27T01:00:00Z"
    assert leftover_copies([pod], CREATED, timedelta(hours=1)) == [pod]


@pytest.mark.parametrize(
    ("labels", "selectors", "expected"),
    [
        pytest.param({"app": "shop", "tier": "web"}, [], [], id="no selectors"),
        pytest.param({"app": "shop", "tier": "web"}, [{"app": "cart"}], [], id="selector does not match"),
        pytest.param({"app": "shop", "tier": "web"}, [{"app": "shop"}], ["app"], id="one selector"),
        pytest.param(
            {"app": "shop", "tier": "web", "track": "stable"},
            [{"app": "shop", "track": "stable"}, {"tier": "web", "track": "stable"}],
            ["track"],
            id="one shared label breaks both",
        ),
        pytest.param(
            {"app": "shop", "tier": "web"},
            [{"app": "shop"}, {"tier": "web"}],
            ["app", "tier"],
            id="disjoint selectors need one label each",
        ),
    ],
)
def test_labels_breaking_selectors(labels: dict, selectors: list[dict], expected: list[str]) -> None:
    assert labels_breaking_selectors(labels, selectors) == expected
