"""`auto` takes the least privilege that reads the target's /proc/1/root (issue 13, item 11): a
non-root target (65532:65532) is debugged as its own uid and gid with every capability dropped and no
privilege escalation, in every Pod Security level (an unlabelled namespace too), not as root with
SYS_PTRACE; a root target keeps root with SYS_PTRACE where the level admits it. `inspect` and attach's
progress line say the same thing. Against the emulator (kdebug's own API server over a real socket).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kdebug.errors import ExitCode
from tests.fixtures.cluster import Cluster
from tests.fixtures.kdebug_cli import ephemeral_containers

LEAST = {
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "allowPrivilegeEscalation": False,
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("sessions: {}\n")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))


@pytest.mark.parametrize("level", [None, "privileged", "baseline", "restricted"])
def test_a_non_root_target_is_debugged_as_itself_without_capabilities(cluster: Cluster, run_kdebug, level):
    cluster.namespace("team", level)
    cluster.pod("team", nonroot=True, restricted=level == "restricted")
    kubeconfig = str(cluster.kubeconfig(namespace="team"))
    result = run_kdebug("attach", "app", "--kubeconfig", kubeconfig, "--", "true")
    assert result.code == 0, result.err
    (debugger,) = ephemeral_containers(cluster.emu, "team", "app")
    assert debugger["securityContext"] == LEAST
    line = next(line for line in result.err.splitlines() if "security profile" in line)
    assert "restricted" in line and "65532:65532" in line and "SYS_PTRACE" not in line


def test_inspect_and_attach_say_the_same_thing(cluster: Cluster, run_kdebug):
    cluster.namespace("plain")
    cluster.pod("plain", nonroot=True)
    kubeconfig = str(cluster.kubeconfig(namespace="plain"))
    report = run_kdebug("inspect", "app", "--kubeconfig", kubeconfig, "--no-registry", "-o", "json").json()
    security = report["security"]
    debug = next(c for c in report["containers"] if c["name"] == "app")["debugImage"]
    chosen = (security["profile"], security["runAsUser"], security["runAsGroup"])
    assert chosen == ("restricted", 65532, 65532)
    assert (debug["runAsUser"], debug["runAsGroup"]) == (65532, 65532)
    assert "SYS_PTRACE" not in security["reason"] and security["procRootReadable"] is True
    attached = run_kdebug("attach", "app", "--kubeconfig", kubeconfig, "--", "true")
    assert f"security profile {security['reason']}" in attached.err


def test_a_root_target_keeps_root_with_sys_ptrace_where_the_level_admits_it(cluster: Cluster, run_kdebug):
    cluster.namespace("plain")
    cluster.pod("plain")
    kubeconfig = str(cluster.kubeconfig(namespace="plain"))
    result = run_kdebug("attach", "app", "--kubeconfig", kubeconfig, "--", "true")
    assert result.code == 0, result.err
    (debugger,) = ephemeral_containers(cluster.emu, "plain", "app")
    assert debugger["securityContext"] == {"capabilities": {"add": ["SYS_PTRACE"]}}


def test_an_explicit_general_profile_is_still_root_with_sys_ptrace(cluster: Cluster, run_kdebug):
    cluster.namespace("plain")
    cluster.pod("plain", nonroot=True)
    kubeconfig = str(cluster.kubeconfig(namespace="plain"))
    result = run_kdebug("attach", "app", "--kubeconfig", kubeconfig, "--profile", "general", "--", "true")
    assert result.code == ExitCode.OK, result.err
    (debugger,) = ephemeral_containers(cluster.emu, "plain", "app")
    assert debugger["securityContext"]["capabilities"] == {"add": ["SYS_PTRACE"]}
