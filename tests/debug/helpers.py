"""Helpers for the end-to-end attach tests: a real pseudo-terminal and a TCP relay that can be cut."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pexpect

STTY_STATE = r"([0-9a-f]+(?::[0-9a-f]+){10,})\r\n"


def spawn(command: str, args: list[str], kubeconfig: Path, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    """A process on a real pseudo-terminal."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "TERM": "xterm"}
    return pexpect.spawn(
        command, args, env=env, dimensions=(rows, cols), timeout=20, encoding="utf-8", codec_errors="replace"
    )


class TcpProxy:
    """A TCP relay on 127.0.0.1 in front of the emulator; `cut()` drops every connection and the port."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list = []
        self.lock = threading.Lock()
        self.relayed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
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
