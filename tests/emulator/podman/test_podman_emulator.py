"""End to end: `kdebug attach` against the emulator's demo cluster running on the podman runtime."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from kdebug_emulator.runtimes.podman import PodmanRuntime

pytestmark = pytest.mark.podman

KDEBUG = [sys.executable, "-m", "kdebug"]  # the interpreter running the tests, so this checkout's code
DEBUG_NONROOT = "gcr.io/distroless/base-debian12:debug-nonroot"


@pytest.fixture(scope="module")
def demo_kubeconfig(registry_host: str) -> Iterator[str]:
    from kdebug_emulator import Emulator

    with Emulator(demo=True, runtime=functools.partial(PodmanRuntime, registry_host=registry_host)) as emu:
        assert emu.runtime_name == "podman"
        wait_until_running(emu, ("web", "api"))
        yield str(emu.kubeconfig)


def wait_until_running(emu: object, pods: tuple[str, ...]) -> None:
    changed: threading.Event = emu._changed  # type: ignore[attr-defined]  # set on every store change

    def all_running() -> bool:
        found = [emu.get("pods", "demo", name) or {} for name in pods]  # type: ignore[attr-defined]
        return all(p.get("status", {}).get("phase") == "Running" for p in found)

    for _ in range(600):
        if all_running():
            return
        changed.wait(0.5)
        changed.clear()
    raise AssertionError("demo pods did not run")


def kdebug_attach(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    return subprocess.run(
        [*KDEBUG, "attach", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_web_debugger_lists_the_scratch_image_files(demo_kubeconfig: str) -> None:
    done = kdebug_attach(demo_kubeconfig, "web", "-n", "demo", "--", "ls", "/proc/1/root")
    assert (done.returncode, done.stdout.split()) == (0, ["app", "dev", "etc", "proc", "run", "sys"])


def test_web_debugger_sees_the_app_as_pid_1(demo_kubeconfig: str) -> None:
    done = kdebug_attach(demo_kubeconfig, "web", "-n", "demo", "--", "ps", "-o", "pid,args")
    assert done.stdout.splitlines()[1].split() == ["1", "/app", "-P"]


def test_api_debug_nonroot_reads_distroless_os_release(demo_kubeconfig: str) -> None:
    args = ("api", "-n", "demo", "--image", DEBUG_NONROOT, "--", "cat", "/proc/1/root/etc/os-release")
    done = kdebug_attach(demo_kubeconfig, *args)
    assert (done.returncode, 'PRETTY_NAME="Distroless"' in done.stdout) == (0, True)


def test_remote_exit_code_is_kdebugs_exit_code(demo_kubeconfig: str) -> None:
    done = kdebug_attach(demo_kubeconfig, "web", "-n", "demo", "--", "sh", "-c", "exit 3")
    assert done.returncode == 3


def test_missing_debug_image_fails_with_the_pull_error(demo_kubeconfig: str) -> None:
    image = "gcr.io/distroless/nope-debian12:debug"
    done = kdebug_attach(
        demo_kubeconfig, "web", "-n", "demo", "--image", image, "--timeout", "30s", "--", "true"
    )
    assert (done.returncode, "ErrImagePull" in done.stderr or "ImagePullBackOff" in done.stderr) == (67, True)


def test_runtime_by_name_brings_its_own_registry(podman_ok: None) -> None:
    from kdebug_emulator import Emulator

    with Emulator(demo=True, runtime="podman") as emu:
        wait_until_running(emu, ("web",))
        registry_process = emu.api.runtime.registry.process
    assert registry_process.poll() is not None  # stopped with the emulator


def test_interactive_shell_shows_the_scratch_app_as_pid_1(demo_kubeconfig: str) -> None:
    import pexpect

    env = {**os.environ, "KUBECONFIG": demo_kubeconfig, "TERM": "xterm"}
    shell = pexpect.spawn(
        KDEBUG[0], [*KDEBUG[1:], "attach", "web", "-n", "demo"], env=env, timeout=60, dimensions=(40, 120)
    )
    try:
        shell.sendline("ps -o pid,args; echo done-$((2+3))")
        shell.expect("done-5")
        listing = shell.before.decode(errors="replace")
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
    assert any(line.split() == ["1", "/app", "-P"] for line in listing.splitlines())
