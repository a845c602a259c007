"""Nothing of the runtime remains after it stops: no container, no pod, no conmon, no mount."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kdebug_emulator.runtimes.podman import PodmanSetup, oci_runtime
from tests.emulator.podman.harness import WAIT_SECONDS, Harness, is_running, make_pod

pytestmark = pytest.mark.podman

ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def leftovers(setup: PodmanSetup) -> dict[str, object]:
    containers = setup.run_sync("ps", "--all", "--quiet").stdout.split()
    pods = setup.run_sync("pod", "ps", "--quiet").stdout.split()
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return {
        "containers": containers,
        "pods": pods,
        "conmon": processes_mentioning(str(setup.root / "storage")),
        "mounts": [m for m in mounts if m.startswith((str(setup.root), str(setup.runroot)))],
    }


def setup_of(workdir: Path) -> PodmanSetup:
    """The runtime's podman, found again from its directory (the runroot link points to the real one)."""
    root = workdir / "podman"
    return PodmanSetup(root, oci_runtime() or "runc", (root / "run").resolve())


@pytest.mark.parametrize(
    "mode", ["handler", "atexit"], ids=["sigterm-then-shutdown", "sigterm-then-exit-hook"]
)
def test_nothing_remains_after_sigterm(registry_host: str, tmp_path: Path, mode: str) -> None:
    host = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator.podman.host_runtime", str(tmp_path), registry_host, mode],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert host.stdout is not None and host.stdout.readline().strip() == "ready"
        setup = setup_of(tmp_path)
        assert len(leftovers(setup)["containers"]) == 3  # infra, app, debugger: they really ran
        host.send_signal(signal.SIGTERM)
        host.wait(timeout=WAIT_SECONDS)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
    runroot_left = setup.runroot.exists()
    found = leftovers(setup)
    if not setup.runroot.is_relative_to(tmp_path):  # our own podman calls above recreated it
        shutil.rmtree(setup.runroot, ignore_errors=True)
    assert (runroot_left, found) == (False, {"containers": [], "pods": [], "conmon": [], "mounts": []})


def test_stop_pod_removes_its_containers(harness: Harness) -> None:
    pod = harness.start_pod(make_pod([{"name": "app", "image": "registry.kdebug.test/demo/web:1.0"}]))
    harness.recorder.wait_for(pod["metadata"]["name"], "app", is_running)
    name = harness.runtime.podman_name("t", pod["metadata"]["name"], "app")
    harness.call(harness.runtime.stop_pod("t", pod["metadata"]["name"]))
    found = harness.runtime.setup.run_sync(
        "ps", "--all", "--format", "json", "--filter", f"name={name}"
    ).stdout
    assert json.loads(found or "[]") == []
