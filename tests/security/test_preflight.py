"""Permission preflight against the emulator: one SelfSubjectRulesReview, then one concurrent round of
SelfSubjectAccessReviews for whatever its rules did not grant."""

from __future__ import annotations

import threading

import pytest

from kdebug.errors import ExitCode, NotFoundError, PermissionDeniedError
from kdebug.kube.paths import SELF_SUBJECT_ACCESS_REVIEW as ACCESS_REVIEW_PATH
from kdebug.kube.paths import SELF_SUBJECT_RULES_REVIEW as RULES_REVIEW_PATH
from kdebug.security.preflight import ALLOWED, PARTLY_UNKNOWN, UNKNOWN, run_preflight
from tests.fixtures.cluster import mutating_requests

POD_READER = [{"verbs": ["get", "list", "watch"], "resources": ["pods"], "apiGroups": [""]}]
ATTACHER = [
    {"verbs": ["get"], "resources": ["pods"]},
    {"verbs": ["patch"], "resources": ["pods/ephemeralcontainers"]},
    {"verbs": ["get", "create"], "resources": ["pods/attach"]},
]


def test_admin_is_allowed_to_attach(cluster):
    result = run_preflight(cluster.client(), "default", "attach", pod_name="app")

    assert result.state == ALLOWED


def _reviews(cluster, before: int, path: str) -> list[dict]:
    return [r for r in list(cluster.emu.requests)[before:] if r["path"] == path]


def _without_rules_reviews(client):
    """The client against a server that has no SelfSubjectRulesReview (404), as some clusters answer."""
    real_request = client.request

    def request(method, path, **kwargs):
        if path == RULES_REVIEW_PATH:
            raise NotFoundError("the server could not find the requested resource")
        return real_request(method, path, **kwargs)

    client.request = request  # type: ignore[method-assign]
    return client


def test_rules_that_grant_everything_need_no_access_review(cluster):
    before = len(cluster.emu.requests)

    result = run_preflight(cluster.client(), "default", "attach")

    assert (result.state, len(result.permissions)) == (ALLOWED, 4)
    assert len(_reviews(cluster, before, RULES_REVIEW_PATH)) == 1
    assert _reviews(cluster, before, ACCESS_REVIEW_PATH) == []


def test_only_what_the_rules_do_not_grant_is_asked(cluster):
    cluster.emu.add_user("bob", rules=POD_READER)
    before = len(cluster.emu.requests)

    with pytest.raises(PermissionDeniedError):
        run_preflight(cluster.client("bob"), "default", "attach")

    asked = _reviews(cluster, before, ACCESS_REVIEW_PATH)
    assert len(asked) == 3  # get pods was granted by the rules; the other three are asked


def test_without_rules_reviews_there_is_one_access_review_per_permission(cluster):
    before = len(cluster.emu.requests)

    result = run_preflight(_without_rules_reviews(cluster.client()), "default", "attach")

    assert result.state == ALLOWED
    assert len(_reviews(cluster, before, ACCESS_REVIEW_PATH)) == len(result.permissions) == 4


def test_reviews_are_sent_concurrently(cluster):
    client = _without_rules_reviews(cluster.client())
    count = 4  # attach needs four reviews
    barrier = threading.Barrier(count, timeout=10)  # only passes when all four are in flight at once
    real_request = client.request

    def request_in_step(method, path, **kwargs):
        if path == ACCESS_REVIEW_PATH:
            barrier.wait()
        return real_request(method, path, **kwargs)

    client.request = request_in_step  # type: ignore[method-assign]

    assert run_preflight(client, "default", "attach").state == ALLOWED


@pytest.mark.parametrize(
    ("operation", "missing"),
    [
        pytest.param(
            "attach",
            "patch pods/ephemeralcontainers, create pods/attach, get pods/attach",
            id="attach needs patch ephemeralcontainers and attach",
        ),
        pytest.param(
            "copy",
            "create pods, delete pods, create pods/attach, get pods/attach",
            id="copy needs create and delete pods",
        ),
        pytest.param(
            "run",
            "patch pods/ephemeralcontainers, create pods/attach, get pods/attach, "
            "create pods/exec, get pods/exec",
            id="run needs exec too",
        ),
    ],
)
def test_denied_user_fails_with_the_exact_missing_permissions(cluster, operation, missing):
    cluster.emu.add_user("bob", rules=POD_READER)

    with pytest.raises(PermissionDeniedError) as caught:
        run_preflight(cluster.client("bob"), "default", operation, username="bob")

    assert caught.value.message == f'user "bob" may not {missing} in namespace "default"'
    assert caught.value.exit_code == ExitCode.PERMISSION_DENIED
    assert "doctor --rbac" in (caught.value.hint or "")


def test_denied_user_sends_no_mutating_request(cluster):
    cluster.emu.add_user("bob", rules=POD_READER)
    before = len(cluster.emu.requests)

    with pytest.raises(PermissionDeniedError):
        run_preflight(cluster.client("bob"), "default", "attach", pod_name="app")

    assert mutating_requests(cluster.emu, before) == []


def test_permissions_in_another_namespace_do_not_count(cluster):
    cluster.namespace("team")
    cluster.emu.add_user("carol", rules=[{**rule, "namespaces": ["team"]} for rule in ATTACHER])

    assert run_preflight(cluster.client("carol"), "team", "attach").state == ALLOWED
    with pytest.raises(PermissionDeniedError, match='in namespace "default"'):
        run_preflight(cluster.client("carol"), "default", "attach")


def test_a_cluster_without_access_reviews_is_unknown_not_denied(cluster):
    cluster.emu.add_user("bob", rules=POD_READER)
    cluster.emu.access_reviews_enabled = False

    result = run_preflight(cluster.client("bob"), "default", "attach")

    assert result.state == UNKNOWN
    assert "proceeding" in result.summary


def test_an_unreachable_review_endpoint_is_unknown(cluster):
    client = cluster.client()
    cluster.emu.stop()

    result = run_preflight(client, "default", "attach")

    assert result.state == UNKNOWN


def test_some_answers_missing_is_partly_unknown(cluster):
    client = _without_rules_reviews(cluster.client())
    real_request = client.request
    calls = iter(range(100))

    def drop_first_review(method, path, **kwargs):
        if path == ACCESS_REVIEW_PATH and next(calls) == 0:
            from kdebug.errors import ApiError

            raise ApiError("the server is currently unable to handle the request", status=503)
        return real_request(method, path, **kwargs)

    client.request = drop_first_review  # type: ignore[method-assign]

    result = run_preflight(client, "default", "attach")

    assert result.state == PARTLY_UNKNOWN
    assert len(result.unanswered) == 1
