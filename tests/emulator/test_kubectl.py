"""The real kubectl against the emulator: get, apply, debug, and interactive attach/exec round trips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kubectl


def _find_kubectl() -> str | None:
    for candidate in (
        "/usr/bin/kubectl",
        str(Path(sys.executable).parent / "kubectl"),
        shutil.which("kubectl"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


KUBECTL = _find_kubectl()
# every kubectl on this machine: v1.32 (websocket attach, plain watches) and newer ones (WatchList)
ALL_KUBECTLS = sorted(
    {
        os.path.realpath(p)
        for p in ("/usr/bin/kubectl", str(Path(sys.executable).parent / "kubectl"))
        if os.access(p, os.X_OK)
    }
)
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="no kubectl binary found")


def _kubectl(emu, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(emu.kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


@needs_kubectl
def test_get_pods_prints_the_demo_pods(demo_emulator):
    demo_emulator.wait_for(
        lambda: all(p["status"]["phase"] == "Running" for p in demo_emulator.list("pods", "demo"))
    )
    result = _kubectl(demo_emulator, "get", "pods", "-n", "demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    assert rows["web"] == ["1/1", "Running"]
    assert rows["api"] == ["1/1", "Running"]
    assert sum(name.startswith("shop-") for name in rows) == 2


@needs_kubectl
def test_get_deployment_by_short_name(demo_emulator):
    result = _kubectl(demo_emulator, "get", "deploy", "shop", "-n", "demo", "-o", "jsonpath={.spec.replicas}")
    assert (result.returncode, result.stdout) == (0, "2")


@needs_kubectl
def test_apply_creates_a_pod(emulator, tmp_path):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: applied\n  labels: {app: applied}\n"
        "spec:\n  containers:\n  - name: app\n    image: registry.kdebug.test/demo/web:1.0\n"
    )
    result = _kubectl(emulator, "apply", "-f", str(manifest))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pod/applied created"
    stored = emulator.get("pods", "default", "applied")
    assert stored["metadata"]["labels"] == {"app": "applied"}


@needs_kubectl
def test_get_of_a_missing_pod_prints_the_api_error(emulator):
    result = _kubectl(emulator, "get", "pod", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'


def _kubectl_version(path: str) -> str:
    result = subprocess.run(
        [path, "version", "--client"], capture_output=True, text=True, timeout=30, check=False
    )
    return result.stdout.split("Client Version: ", 1)[-1].split()[0] if result.returncode == 0 else "unknown"


each_kubectl = pytest.mark.parametrize(
    "kubectl", ALL_KUBECTLS or [None], ids=lambda p: _kubectl_version(p) if p else "none"
)
# client-go's streaming lists (sendInitialEvents + the initial-events-end bookmark), on by default in
# newer clients; forced on so every kubectl here exercises them
WATCH_LIST = {**os.environ, "KUBE_FEATURE_WatchListClient": "true"}


def _each(kubectl: str | None, emu, *args: str) -> subprocess.CompletedProcess[str]:
    if kubectl is None:
        pytest.skip("no kubectl binary found")
    return subprocess.run(
        [kubectl, "--kubeconfig", str(emu.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=WATCH_LIST,
    )


@each_kubectl
def test_debug_adds_an_ephemeral_container(emulator, make_pod, kubectl):
    emulator.apply(make_pod(name="target"))
    result = _each(kubectl, emulator, "debug", "target", "--image=busybox:1.36", "--target=app",
                   "--attach=false")  # fmt: skip
    assert result.returncode == 0, result.stderr
    containers = emulator.get("pods", "default", "target")["spec"]["ephemeralContainers"]
    assert [(c["image"], c["targetContainerName"]) for c in containers] == [("busybox:1.36", "app")]
    assert containers[0]["name"].startswith("debugger-")


@each_kubectl
def test_wait_sees_a_pod_become_ready(emulator, make_pod, kubectl):
    emulator.set_create_delay(1.0)  # not ready when kubectl first looks: it has to watch
    emulator.apply(make_pod(name="slow"))
    result = _each(kubectl, emulator, "wait", "--for=condition=Ready", "pod/slow", "--timeout=30s")
    assert (result.returncode, result.stdout.strip()) == (0, "pod/slow condition met"), result.stderr

    def watches() -> list[str]:  # logged when the watch ends, which is when kubectl has gone
        return [r["query"] for r in emulator.requests if "watch=true" in r["query"]]

    emulator.wait_for(lambda: bool(watches()), timeout=10)
    assert all("sendInitialEvents=true" in query for query in watches())


@needs_kubectl
def test_debug_of_a_static_pod_prints_the_validation_error(emulator, make_pod):
    emulator.apply(make_pod(name="target", annotations={"kubernetes.io/config.mirror": "x"}))
    result = _kubectl(emulator, "debug", "target", "--image=busybox:1.36", "--attach=false")
    assert result.returncode == 1
    assert (
        'The Pod "target" is invalid: []: Forbidden: static pods do not support ephemeral containers'
        in result.stderr
    )


@needs_kubectl
def test_auth_can_i_uses_the_rule_table(emulator, tmp_path):
    emulator.add_user("viewer", rules=[{"verbs": ["get"], "resources": ["pods"]}])
    config = emulator.write_kubeconfig(tmp_path / "viewer", user="viewer", auth="cert")
    result = subprocess.run(
        [KUBECTL or "kubectl", "--kubeconfig", str(config), "auth", "can-i", "create", "pods/attach"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (1, "no")


def _start_debugger(emulator, make_pod, *, tty: bool) -> None:
    emulator.apply(make_pod(name="target"))
    result = _kubectl(
        emulator,
        "debug",
        "target",
        "--image=busybox:1.36",
        "--target=app",
        "--attach=false",
        "--container=dbg",
        "-i",
        *(["-t"] if tty else []),
        "--",
        "sh",
    )
    assert result.returncode == 0, result.stderr

    def running() -> bool:
        statuses = emulator.get("pods", "default", "target")["status"].get("ephemeralContainerStatuses", [])
        return any(s["name"] == "dbg" and "running" in s["state"] for s in statuses)

    emulator.wait_for(running, timeout=20)


@needs_kubectl
def test_interactive_exec_round_trip(emulator, make_pod):
    import pexpect

    _start_debugger(emulator, make_pod, tty=False)
    child = pexpect.spawn(
        KUBECTL,
        ["--kubeconfig", str(emulator.kubeconfig), "exec", "-it", "target", "-c", "dbg", "--", "sh"],
        timeout=30,
        encoding="utf-8",
    )
    try:
        child.sendline("echo round-$((20+22))")
        child.expect("round-42")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3


@needs_kubectl
def test_interactive_attach_round_trip(emulator, make_pod):
    import pexpect

    _start_debugger(emulator, make_pod, tty=True)
    child = pexpect.spawn(
        KUBECTL,
        ["--kubeconfig", str(emulator.kubeconfig), "attach", "-it", "target", "-c", "dbg"],
        timeout=30,
        encoding="utf-8",
    )
    try:
        child.sendline("echo attached-$((6*7))")
        child.expect("attached-42")
    finally:
        child.close(force=True)


@each_kubectl
def test_interactive_debug_round_trip(emulator, make_pod, kubectl):
    import pexpect

    if kubectl is None:
        pytest.skip("no kubectl binary found")
    emulator.apply(make_pod(name="target"))
    args = ["--kubeconfig", str(emulator.kubeconfig), "debug", "-it", "target", "--image=busybox:1.36",
            "--target=app", "--", "sh"]  # fmt: skip
    child = pexpect.spawn(kubectl, args, timeout=30, encoding="utf-8")
    try:
        child.expect("If you don't see a command prompt")
        child.sendline("echo debugged-$((40+2))")
        child.expect("debugged-42")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
