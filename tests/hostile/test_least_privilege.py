"""`auto` takes the least privilege that reads the target's /proc/1/root (issue 13, item 11): a
non-root target (65532:65532) is debugged as its own uid and gid with every capability dropped and no
privilege escalation, in every Pod Security level (an unlabelled namespace too), not as root with
SYS_PTRACE; a root target keeps root with SYS_PTRACE where the level admits it. `inspect` and attach's
progress line say the same thing. Against the emulator (kdebug's own API server over a real socket).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdebug.errors import ExitCode
from kdebug.security.profiles import candidate_container, choose_profile_for_level
from kdebug.security.users import EffectiveUser
from kdebug_emulator.localregistry import start_registry
from kdebug_emulator.podman_images import push_podman_images, tools_present
from kdebug_emulator.runtimes.podman import podman_usable
from tests.emulator.podman.harness import Harness, is_running, make_pod, run_debugger
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


# -- on real containers (podman): auto's choice for a 65532:65532 target reads its /proc/1/root -----


@pytest.fixture(scope="module")
def podman_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    usable, reason = podman_usable()
    if not usable:
        pytest.skip(f"podman cannot run here: {reason}")
    present, missing = tools_present()
    if not present:
        pytest.skip(missing)
    registry = start_registry()
    try:
        push_podman_images(registry.host)
        harness = Harness(tmp_path_factory.mktemp("least-privilege"), registry.host)
        try:
            yield harness
        finally:
            harness.close()
    finally:
        registry.stop()


@pytest.mark.podman
def test_autos_choice_reads_a_non_root_targets_files_on_real_containers(podman_harness: Harness) -> None:
    app = {"name": "app", "image": "gcr.io/distroless/base-debian12:nonroot"}
    pod = make_pod([app], security_context={"runAsUser": 65532, "runAsGroup": 65532})
    podman_harness.start_pod(pod)
    podman_harness.recorder.wait_for(pod["metadata"]["name"], "app", is_running)
    decision = choose_profile_for_level(pod, "app", "privileged", "65532")
    assert (decision.profile, decision.run_as_user, decision.run_as_group) == ("restricted", 65532, 65532)
    debugger = {
        "name": "debugger-" + uuid.uuid4().hex[:5],
        "image": "docker.io/library/busybox:1.36.1",
        "command": ["sh", "-c", "ls /proc/1/root/etc && grep CapEff /proc/self/status"],
        "targetContainerName": "app",
    }
    run_as = EffectiveUser(decision.run_as_user, decision.run_as_group)
    exit_code, output = run_debugger(
        podman_harness, pod, candidate_container(decision.profile, run_as, debugger)
    )
    assert (exit_code, "os-release" in output, "CapEff:\t0000000000000000" in output) == (0, True, True), (
        output
    )
