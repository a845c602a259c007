"""Never harm the target (issue 5), checked across the whole test session; this module runs last.

Every Emulator made in this process keeps its request log (`Emulator.session_requests()`), and the tests
that run kdebug as a subprocess talk to an emulator in this process, so their requests are there too.
kdebug's own requests are told apart by their User-Agent. Across all of them, the only writes kdebug
sent are: ephemeral container patches (PATCH/PUT pods/NAME/ephemeralcontainers), creations of kdebug
copies (POST of a pod labelled kdebug.dev/copy-of), deletions of such copies, and access reviews. No
kdebug request ever touched a pod's status, eviction or binding.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from kdebug_emulator import Emulator

# `OpenAPI-Generator/` is the kubernetes client's default User-Agent, counted as kdebug's while requests
# sent before kdebug/kube/client.py set `kdebug/VERSION` may still carry it; no other client here uses it.
KDEBUG_AGENTS = ("kdebug/", "OpenAPI-Generator/")
COPY_LABEL = "kdebug.dev/copy-of"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_POD = r"^/api/v1/namespaces/[^/]+/pods/(?P<name>[^/]+)"
EPHEMERAL_PATH = re.compile(_POD + r"/ephemeralcontainers$")
POD_PATH = re.compile(_POD + r"$")
FORBIDDEN_SUBRESOURCE = re.compile(_POD + r"/(?P<sub>status|eviction|binding)$")
PODS_PATH = re.compile(r"^/api/v1/namespaces/[^/]+/pods$")
REVIEW_PATHS = frozenset(
    {
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    }
)


def sent_by_kdebug(entry: dict[str, Any]) -> bool:
    return str(entry.get("user_agent", "")).startswith(KDEBUG_AGENTS)


def is_copy(entry: dict[str, Any]) -> bool:
    return COPY_LABEL in (entry.get("labels") or {})


def harm(entry: dict[str, Any]) -> str | None:
    """Why this request (by kdebug) could harm a target, or None when it is one kdebug may send."""
    method, path = entry["method"], entry["path"]
    sub = FORBIDDEN_SUBRESOURCE.match(path)
    if sub:
        return f"touches the pod's {sub['sub']}"
    if method not in MUTATING:
        return None
    if method in ("PATCH", "PUT") and EPHEMERAL_PATH.match(path):
        return None
    if method == "POST" and path in REVIEW_PATHS:
        return None
    if method == "POST" and PODS_PATH.match(path):
        return None if is_copy(entry) else f"creates a pod without the {COPY_LABEL} label"
    pod = POD_PATH.match(path)
    if method == "DELETE" and pod:
        # a copy still there carries the label; one already gone (404) is known by the copies' name
        if is_copy(entry) or (entry.get("code") == 404 and "-kdebug-" in pod["name"]):
            return None
        return "deletes a pod that is not a kdebug copy"
    if pod:
        return f"{method} modifies a pod that is not kdebug's" if not is_copy(entry) else None
    return f"{method} is not a write kdebug may send"


def describe(entry: dict[str, Any], reason: str) -> str:
    query = f"?{entry['query']}" if entry.get("query") else ""
    request = f"{entry['method']} {entry['path']}{query}"
    return f"{request} -> {entry.get('code')} ({entry.get('user_agent')}): {reason}"


# --- the rules themselves ---------------------------------------------------------------------------


def _entry(method: str, path: str, *, labels: dict[str, str] | None = None, code: int = 200) -> dict:
    return {
        "method": method,
        "path": path,
        "query": "",
        "code": code,
        "user_agent": "kdebug/0.1",
        "labels": labels,
    }


NS = "/api/v1/namespaces/team"


@pytest.mark.parametrize(
    "entry",
    [
        _entry("PATCH", f"{NS}/pods/web/ephemeralcontainers"),
        _entry("PUT", f"{NS}/pods/web/ephemeralcontainers"),
        _entry("POST", f"{NS}/pods", labels={COPY_LABEL: "shop"}, code=201),
        _entry("DELETE", f"{NS}/pods/shop-kdebug-abcde", labels={COPY_LABEL: "shop"}),
        _entry("DELETE", f"{NS}/pods/shop-kdebug-abcde", code=404),
        _entry("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", code=201),
        _entry("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", code=201),
        _entry("GET", f"{NS}/pods/web"),
        _entry("GET", f"{NS}/pods/web/attach"),
    ],
    ids=[
        "ephemeral-patch",
        "ephemeral-put",
        "copy-create",
        "copy-delete",
        "gone-copy-delete",
        "access-review",
        "self-subject-review",
        "read",
        "attach",
    ],
)
def test_allowed_requests_are_not_harm(entry):
    assert harm(entry) is None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (_entry("PATCH", f"{NS}/pods/web"), "PATCH modifies a pod that is not kdebug's"),
        (_entry("PUT", f"{NS}/pods/web"), "PUT modifies a pod that is not kdebug's"),
        (
            _entry("DELETE", f"{NS}/pods/web", labels={"app": "web"}),
            "deletes a pod that is not a kdebug copy",
        ),
        (_entry("DELETE", f"{NS}/pods/web", code=404), "deletes a pod that is not a kdebug copy"),
        (
            _entry("POST", f"{NS}/pods", labels={"app": "web"}),
            "creates a pod without the kdebug.dev/copy-of label",
        ),
        (_entry("GET", f"{NS}/pods/web/status"), "touches the pod's status"),
        (_entry("PATCH", f"{NS}/pods/web/status"), "touches the pod's status"),
        (_entry("POST", f"{NS}/pods/web/eviction"), "touches the pod's eviction"),
        (_entry("POST", f"{NS}/pods/web/binding"), "touches the pod's binding"),
        (_entry("DELETE", f"{NS}/pods"), "DELETE is not a write kdebug may send"),
        (_entry("POST", "/apis/apps/v1/namespaces/team/deployments"), "POST is not a write kdebug may send"),
    ],
    ids=[
        "patch-target",
        "put-target",
        "delete-target",
        "delete-missing-non-copy",
        "create-unlabelled-pod",
        "read-status",
        "patch-status",
        "evict",
        "bind",
        "delete-collection",
        "create-deployment",
    ],
)
def test_harmful_requests_are_named(entry, reason):
    assert harm(entry) == reason


@pytest.mark.parametrize(
    ("agent", "counted"),
    [("kdebug/0.1.0", True), ("OpenAPI-Generator/31.0.0/python", True), ("kubectl/v1.32.4", False),
     ("python-requests/2.32", False), ("", False)],
    ids=["kdebug", "kubernetes-client", "kubectl", "test-requests", "none"],
)  # fmt: skip
def test_kdebug_is_known_by_its_user_agent(agent, counted):
    assert sent_by_kdebug({"user_agent": agent}) is counted


# --- the session-wide check --------------------------------------------------------------------------


def _kdebug_requests() -> list[dict[str, Any]]:
    return [entry for log in Emulator.session_requests() for entry in log if sent_by_kdebug(entry)]


@pytest.fixture
def kdebug_requests() -> list[dict[str, Any]]:
    entries = _kdebug_requests()
    if not entries:
        pytest.skip("no kdebug requests reached an emulator in this session: run this module with the suite")
    return entries


def test_kdebug_sent_no_request_that_could_harm_a_target(kdebug_requests):
    harmful = [describe(entry, reason) for entry in kdebug_requests if (reason := harm(entry))]
    assert harmful == [], f"{len(harmful)} kdebug request(s) could harm a target:\n" + "\n".join(harmful)
