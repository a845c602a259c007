"""Helpers for end-to-end `kdebug attach` tests against the emulator (fixtures in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from kdebug.cli.main import main

KDEBUG = str(Path(sys.executable).with_name("kdebug"))
STTY_STATE = r"([0-9a-f]+(?::[0-9a-f]+){10,})\r\n"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def kubeconfig(demo_emulator, tmp_path) -> Path:
    """An admin kubeconfig whose context namespace is `demo`."""
    path = tmp_path / "kubeconfig"
    demo_emulator.write_kubeconfig(path, namespace="demo")
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo"), timeout=15)
    return path


def all_running(emulator, namespace: str, name: str | None = None) -> bool:
    """Every container of the pod (or of every pod in the namespace) reports running."""
    pods = [emulator.get("pods", namespace, name) or {}] if name else emulator.list("pods", namespace)
    for pod in pods:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        if not statuses or not all("running" in (s.get("state") or {}) for s in statuses):
            return False
    return True


@pytest.fixture
def run_kdebug(capfd):
    """Run `kdebug ARGS` in-process through the real entry point; returns exit code, stdout, stderr."""

    def run(*args: str) -> Result:
        code = main(list(args))
        captured = capfd.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_console(args: list[str], kubeconfig: Path, stdin: bytes | None = None, timeout: float = 60) -> Result:
    """Run the `kdebug` console script in a subprocess (real stdin pipe)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    done = subprocess.run(
        [KDEBUG, *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def spawn(command: str, args: list[str], kubeconfig: Path, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    """A process on a real pseudo-terminal."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "TERM": "xterm"}
    return pexpect.spawn(
        command, args, env=env, dimensions=(rows, cols), timeout=20, encoding="utf-8", codec_errors="replace"
    )


def ephemeral_names(emulator, namespace: str, pod: str) -> list[str]:
    stored = emulator.get("pods", namespace, pod) or {}
    return [c["name"] for c in stored.get("spec", {}).get("ephemeralContainers") or []]


class TcpProxy:
    """A TCP relay on 127.0.0.1 in front of the emulator; `cut()` drops every connection and the port."""

    def __init__(self, target_port: int):
        import socket
        import threading

        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list = []
        self.lock = threading.Lock()
        self.relayed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    def _relay(self, source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                self.relayed.set()
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(2)

    def cut(self) -> None:
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(2)
                sock.close()


@pytest.fixture
def proxied_kubeconfig(demo_emulator, kubeconfig, tmp_path):
    """A kubeconfig that reaches the emulator through a TcpProxy; yields (path, proxy)."""
    from urllib.parse import urlsplit

    import yaml

    proxy = TcpProxy(urlsplit(demo_emulator.url).port)
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path = tmp_path / "proxied-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield path, proxy
    proxy.cut()


@pytest.fixture(autouse=True)
def isolated_kdebug_dirs(tmp_path, monkeypatch):
    """Session records, caches and config of these tests stay in the test's own directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("KDEBUG_CONFIG", raising=False)
