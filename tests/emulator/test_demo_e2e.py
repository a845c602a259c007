"""`kdebug demo` as a user runs it: a real process, its kubeconfig, then kdebug and kubectl against it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

KDEBUG = [sys.executable, "-m", "kdebug"]


def _wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"kdebug demo exited early: {stderr}")
        time.sleep(0.05)  # waiting on another process's file: nothing to block on
    raise AssertionError("kdebug demo wrote no kubeconfig")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("demo")
    kubeconfig = home / "kubeconfig"
    env = {**os.environ, "XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data")}
    env.pop("KDEBUG_CONFIG", None)
    env["XDG_CONFIG_HOME"] = str(home / "config")
    process = subprocess.Popen(
        [*KDEBUG, "demo", "--write-kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_for_file(kubeconfig, process)
        yield {**env, "KUBECONFIG": str(kubeconfig)}
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert process.returncode == 0


def _kdebug(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KDEBUG, *args], capture_output=True, text=True, env=env, timeout=120)


def _registry_available() -> bool:
    from kdebug_emulator.localregistry import available

    return available()


def test_attach_runs_a_command_beside_the_scratch_app(demo: dict[str, str]) -> None:
    result = _kdebug(demo, "attach", "web", "-n", "demo", "--", "echo", "smoke-ok")
    assert (result.returncode, result.stdout) == (0, "smoke-ok\n")
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not _registry_available(), reason="Debian's docker-registry is not installed")
def test_inspect_classifies_the_scratch_app_from_the_registry_alone(demo: dict[str, str]) -> None:
    result = _kdebug(demo, "inspect", "web", "-n", "demo", "-o", "json")
    assert result.returncode == 0, result.stderr
    container = json.loads(result.stdout)["containers"][0]
    assert container["classification"]["kind"] == "scratch"
    assert container["registry"]["consulted"] is True
    sources = {e["source"] for e in container["classification"]["evidence"]}
    assert "files" in sources  # the verdict rests on the image's layers, not on its name


@pytest.mark.skipif(not _registry_available(), reason="Debian's docker-registry is not installed")
def test_inspect_finds_the_distroless_nonroot_api_and_its_mirrored_debug_image(demo: dict[str, str]) -> None:
    result = _kdebug(demo, "inspect", "api", "-n", "demo", "-o", "json")
    assert result.returncode == 0, result.stderr
    container = json.loads(result.stdout)["containers"][0]
    verdict = container["classification"]
    assert (verdict["kind"], verdict["flavour"], verdict["nonroot"]) == ("distroless", "base", True)
    debug = container["debugImage"]
    assert debug["image"].endswith("/distroless/base-debian12:debug-nonroot")
    assert debug["image"].startswith("127.0.0.1:")  # the demo's mirror rewrite, as in an air-gapped cluster
    assert (debug["runAsUser"], debug["runAsGroup"]) == (65532, 65532)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on PATH")
def test_kubectl_lists_the_demo_pods(demo: dict[str, str]) -> None:
    result = subprocess.run(
        ["kubectl", "get", "pods", "-n", "demo", "-o", "name"],
        capture_output=True,
        text=True,
        env=demo,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    names = sorted(result.stdout.split())
    assert names[:1] == ["pod/api"] and "pod/web" in names and len(names) == 4


def _podman_usable() -> bool:
    from kdebug_emulator.runtimes.podman import podman_usable

    return podman_usable()[0]


@pytest.mark.podman
@pytest.mark.skipif(not _podman_usable(), reason="podman cannot run containers here")
def test_on_podman_the_debugger_shares_the_scratch_apps_process_namespace(demo: dict[str, str]) -> None:
    script = "cat /proc/1/cmdline; echo; ls /proc/1/root"
    result = _kdebug(demo, "attach", "web", "-n", "demo", "--", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    cmdline, *files = result.stdout.split("\n")
    assert cmdline.split("\0")[0] == "/app"  # PID 1 is the scratch app itself
    assert "app" in files and "bin" not in files  # the scratch image's files, not the debugger's
