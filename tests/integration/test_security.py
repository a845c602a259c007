"""Security profiles end to end: Pod Security levels x root/non-root targets, explicit profiles, --force."""

from __future__ import annotations

import pytest

from kdebug.errors import ExitCode
from tests.fixtures.cluster import mutating_requests
from tests.fixtures.kdebug_cli import ephemeral_containers
from tests.integration.helpers import add_privileged_debugger

EXPECTED_USER = {  # (level, target) -> (runAsUser, runAsGroup) of the debugger, None: the image's (root)
    ("privileged", "root"): (None, None),
    ("privileged", "nonroot"): (65532, 65532),
    ("baseline", "root"): (None, None),
    ("baseline", "nonroot"): (65532, 65532),
    ("restricted", "root"): (1000, 1000),
    ("restricted", "nonroot"): (65532, 65532),
}


@pytest.mark.parametrize(
    ("level", "user"),
    [
        pytest.param(level, user, id=f"{level}-{user}")
        for level in ("privileged", "baseline", "restricted")
        for user in ("root", "nonroot")
    ],
)
def test_auto_profile_succeeds_and_runs_as_the_right_user(
    demo_emulator, kubeconfig, run_kdebug, place_target, level, user
):
    ns = place_target(level, user)
    result = run_kdebug("attach", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--", "id")
    assert result.code == 0, result.err
    assert result.out.startswith("uid=")  # the process runtime never changes user: the spec says who
    (container,) = ephemeral_containers(demo_emulator, ns, "target")
    security = container.get("securityContext") or {}
    assert (security.get("runAsUser"), security.get("runAsGroup")) == EXPECTED_USER[(level, user)]
    assert f"(namespace enforces {level})" in result.err


def test_restricted_namespace_gets_a_restricted_debugger(demo_emulator, kubeconfig, run_kdebug, place_target):
    ns = place_target("restricted", "nonroot")
    result = run_kdebug("attach", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == 0, result.err
    (container,) = ephemeral_containers(demo_emulator, ns, "target")
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize(
    ("level", "profile"),
    [
        # a non-root target: the least privilege, restricted as its own ids, in every level (issue 13)
        pytest.param("privileged", "restricted", id="privileged-restricted"),
        pytest.param("baseline", "restricted", id="baseline-restricted"),
        pytest.param("restricted", "restricted", id="restricted-restricted"),
    ],
)
def test_decision_is_printed_on_stderr(kubeconfig, run_kdebug, place_target, level, profile):
    ns = place_target(level, "nonroot")
    result = run_kdebug("attach", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--", "true")
    assert f"kdebug: security profile {profile}" in result.err


def test_explicit_profile_the_namespace_rejects_fails_before_any_patch(
    demo_emulator, kubeconfig, run_kdebug, place_target
):
    ns = place_target("restricted", "nonroot")
    result = run_kdebug(
        "attach", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--profile", "sysadmin", "--", "true"
    )
    assert result.code == ExitCode.PERMISSION_DENIED
    assert f"profile sysadmin violates namespace {ns}'s Pod Security" in result.err
    assert not [r for r in demo_emulator.requests if r["method"] == "PATCH"]


def test_force_sends_the_rejected_profile_and_the_server_refuses(
    demo_emulator, kubeconfig, run_kdebug, place_target
):
    ns = place_target("restricted", "nonroot")
    result = run_kdebug(
        "attach",
        "target",
        "-n",
        ns,
        "--kubeconfig",
        str(kubeconfig),
        "--profile",
        "sysadmin",
        "--force",
        "--",
        "true",
    )
    assert result.code == ExitCode.PERMISSION_DENIED
    assert 'violates PodSecurity "restricted:latest"' in result.err
    patched = [r["path"] for r in mutating_requests(demo_emulator)]
    assert patched == [f"/api/v1/namespaces/{ns}/pods/target/ephemeralcontainers"]


def test_explicit_profile_the_namespace_admits_is_applied(demo_emulator, kubeconfig, run_kdebug):
    result = run_kdebug(
        "attach", "web", "--kubeconfig", str(kubeconfig), "--profile", "netadmin", "--", "true"
    )
    assert result.code == 0, result.err
    (container,) = ephemeral_containers(demo_emulator, "demo", "web")
    assert set(container["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}


def test_unknown_profile_is_a_usage_error_before_any_request(demo_emulator, kubeconfig, run_kdebug):
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--profile", "root", "--", "true")
    assert result.code == ExitCode.USAGE
    assert len(demo_emulator.requests) == before


def test_namespace_rejecting_every_debugger_fails_before_any_patch_and_suggests_copy(
    demo_emulator, kubeconfig, run_kdebug, place_target
):
    ns = place_target("restricted", "nonroot")
    add_privileged_debugger(demo_emulator, ns, "target")
    result = run_kdebug("attach", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.PERMISSION_DENIED
    assert "would reject any debug container in this pod" in result.err
    assert "hint: debug a copy with --copy" in result.err
    assert not [r for r in demo_emulator.requests if r["method"] == "PATCH"]
