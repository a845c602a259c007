"""`kdebug inspect` shows the security profile `attach --profile auto` would use, and why."""

from __future__ import annotations

import json

from tests.integration.helpers import add_privileged_debugger


def test_json_has_the_profile_decision_for_a_nonroot_target(kubeconfig, run_kdebug):
    result = run_kdebug("inspect", "api", "--kubeconfig", str(kubeconfig), "--no-registry", "-o", "json")
    assert result.code == 0, result.err
    security = json.loads(result.out)["security"]
    # api runs as 65532:65532: auto debugs it as itself with every capability dropped (issue 13)
    assert (security["profile"], security["level"]) == ("restricted", "privileged")
    assert (security["runAsUser"], security["runAsGroup"]) == (65532, 65532)
    assert security["error"] is None


def test_json_profile_follows_the_namespace_level(kubeconfig, run_kdebug, place_target):
    ns = place_target("restricted", "nonroot")
    result = run_kdebug(
        "inspect", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--no-registry", "-o", "json"
    )
    security = json.loads(result.out)["security"]
    assert (security["profile"], security["level"]) == ("restricted", "restricted")


def test_table_prints_the_decision_and_its_reason(kubeconfig, run_kdebug):
    result = run_kdebug("inspect", "web", "--kubeconfig", str(kubeconfig), "--no-registry")
    assert result.code == 0, result.err
    assert "security profile (--profile auto): general: root with SYS_PTRACE" in result.out


def test_planned_spec_carries_the_profile(kubeconfig, run_kdebug, place_target):
    ns = place_target("restricted", "nonroot")
    result = run_kdebug(
        "inspect",
        "target",
        "-n",
        ns,
        "--kubeconfig",
        str(kubeconfig),
        "--no-registry",
        "--spec",
        "-o",
        "json",
    )
    planned = json.loads(result.out)["spec"]
    assert planned["securityContext"]["allowPrivilegeEscalation"] is False
    assert planned["securityContext"]["runAsUser"] == 65532


def test_namespace_rejecting_every_debugger_is_an_error_field(
    demo_emulator, kubeconfig, run_kdebug, place_target
):
    ns = place_target("restricted", "nonroot")
    add_privileged_debugger(demo_emulator, ns, "target")
    result = run_kdebug(
        "inspect", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--no-registry", "-o", "json"
    )
    security = json.loads(result.out)["security"]
    assert security["profile"] is None
    assert "would reject any debug container" in security["error"]
    assert "--copy" in security["hint"]


def test_no_planned_spec_where_attach_would_add_no_container(
    demo_emulator, kubeconfig, run_kdebug, place_target
):
    ns = place_target("restricted", "nonroot")
    add_privileged_debugger(demo_emulator, ns, "target")
    result = run_kdebug(
        "inspect",
        "target",
        "-n",
        ns,
        "--kubeconfig",
        str(kubeconfig),
        "--no-registry",
        "-o",
        "json",
        "--spec",
    )
    report = json.loads(result.out)
    assert (result.code, report["spec"]) == (0, None)
    assert "would reject any debug container" in report["security"]["error"]
