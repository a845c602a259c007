"""Never harm the target (issue 5): the rules, and the watch that applies them to the whole test session.

The rules and the watch live in the plugin tests/fixtures/never_harm.py, which judges every request kdebug
sends to any emulator the tests start, whatever order they run in.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import requests

from kdebug_emulator import Emulator
from tests.fixtures.never_harm import COPY_LABEL, HarmWatch, harm, sent_by_kdebug

ROOT = Path(__file__).resolve().parents[1]


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


# --- the watch --------------------------------------------------------------------------------------


def test_the_watch_judges_every_emulator_a_test_starts(harm_watch: HarmWatch, emulator, tmp_path):
    before = harm_watch.kdebug_requests
    with Emulator(runtime="none", workdir=tmp_path / "second") as second:
        for emu in (emulator, second):
            requests.get(
                emu.url + "/version",
                verify=str(emu.ca_path),
                headers={"User-Agent": "kdebug/test"},
                timeout=10,
            )
    assert harm_watch.kdebug_requests - before == 2


def test_the_watch_ignores_requests_of_other_clients(harm_watch: HarmWatch, emulator):
    before = harm_watch.kdebug_requests
    requests.get(emulator.url + "/version", verify=str(emulator.ca_path), timeout=10)
    assert harm_watch.kdebug_requests == before


HARMFUL_TEST = """
    import requests

    from kdebug_emulator import Emulator


    def test_patches_a_target(tmp_path):
        with Emulator(runtime="none", workdir=tmp_path / "emu") as emu:
            emu.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
                       "spec": {"containers": [{"name": "app", "image": "busybox"}]}})
            requests.patch(
                emu.url + "/api/v1/namespaces/default/pods/web",
                data=b'{"metadata": {"labels": {"touched": "yes"}}}',
                headers={"User-Agent": "kdebug/0.1", "Authorization": "Bearer " + emu.token(),
                         "Content-Type": "application/strategic-merge-patch+json"},
                verify=str(emu.ca_path), timeout=10,
            )


    def test_harmless(tmp_path):
        assert True
"""


@pytest.mark.slow
def test_a_harmful_request_fails_the_run(pytester: pytest.Pytester, monkeypatch):
    # a subprocess, so the harmful request reaches only the inner session's watch, not this one's
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_harm=textwrap.dedent(HARMFUL_TEST))
    result = pytester.runpytest_subprocess("-p", "tests.fixtures.never_harm", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_patches_a_target*",
            "*1 kdebug request(s) could harm a target:*",
            "*PATCH /api/v1/namespaces/default/pods/web -> 200 (kdebug/0.1): PATCH modifies a pod that is not"
            " kdebug's*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
