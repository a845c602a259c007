"""Attach, exec and logs bridged to real podman containers over the websocket channel protocol."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import websocket

from tests.podman.conftest import WAIT_SECONDS, Harness, is_running, is_terminated, logs_of, make_pod

pytestmark = pytest.mark.podman

BUSYBOX = "docker.io/library/busybox:1.36.1"
WEB = "registry.kdebug.test/demo/web:1.0"


class Terminal:
    """A v5 attach/exec client that collects stdout and waits for text in it."""

    def __init__(self, url: str):
        self.ws = websocket.create_connection(url, subprotocols=["v5.channel.k8s.io"], timeout=WAIT_SECONDS)
        self.output = b""
        self.status: dict[str, Any] | None = None

    def send(self, channel: int, data: bytes) -> None:
        self.ws.send_binary(bytes([channel]) + data)

    def resize(self, width: int, height: int) -> None:
        self.send(4, json.dumps({"Width": width, "Height": height}).encode())

    def read_until(self, text: bytes) -> bytes:
        deadline = time.monotonic() + WAIT_SECONDS
        while text not in self.output:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            frame = self.ws.recv()
            if not frame:
                raise AssertionError(f"closed before {text!r}: {self.output[-300:]!r}")
            self._take(frame)
        return self.output

    def read_to_end(self) -> dict[str, Any] | None:
        try:
            while frame := self.ws.recv():
                self._take(frame)
        except websocket.WebSocketConnectionClosedException:
            pass
        return self.status

    def _take(self, frame: bytes) -> None:
        if frame[0] in (1, 2):
            self.output += frame[1:]
        elif frame[0] == 3:
            self.status = json.loads(frame[1:])

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def shell_pod(harness: Harness) -> dict[str, Any]:
    """A scratch app with a BusyBox debugger (stdin, tty) targeting it, running."""
    pod = harness.start_pod(make_pod([{"name": "app", "image": WEB}]))
    name = pod["metadata"]["name"]
    harness.recorder.wait_for(name, "app", is_running)
    debugger = {"name": "debugger", "image": BUSYBOX, "command": ["sh"], "stdin": True, "tty": True,
                "targetContainerName": "app"}  # fmt: skip
    harness.add_ephemeral(pod, debugger)
    harness.recorder.wait_for(name, "debugger", is_running)
    return pod


def attach(harness: Harness, pod: dict[str, Any]) -> Terminal:
    return Terminal(harness.url(pod, "attach", "container=debugger&stdin=1&stdout=1&tty=1"))


def test_attach_runs_commands_in_the_shared_pid_namespace(
    harness: Harness, shell_pod: dict[str, Any]
) -> None:
    terminal = attach(harness, shell_pod)
    try:
        terminal.send(0, b"echo $((6*7)); ps -o pid,args | grep -c '[/]app -P'\n")
        assert b"42\r\n1\r\n" in terminal.read_until(b"42\r\n1\r\n")
    finally:
        terminal.close()


def test_resize_reaches_the_container_terminal(harness: Harness, shell_pod: dict[str, Any]) -> None:
    terminal = attach(harness, shell_pod)
    try:
        terminal.resize(100, 40)
        terminal.send(0, b"stty size\n")
        assert b"40 100" in terminal.read_until(b"40 100")
    finally:
        terminal.close()


def test_shell_exit_terminates_the_ephemeral_container(harness: Harness, shell_pod: dict[str, Any]) -> None:
    terminal = attach(harness, shell_pod)
    terminal.send(0, b"exit 5\n")
    status = terminal.read_to_end()
    state = harness.recorder.wait_for(shell_pod["metadata"]["name"], "debugger", is_terminated)
    assert (state["terminated"]["exitCode"], status) == (5, {"metadata": {}, "status": "Success"})


def test_a_dropped_attach_client_leaves_the_shell_running(
    harness: Harness, shell_pod: dict[str, Any]
) -> None:
    first = attach(harness, shell_pod)
    first.send(0, b"echo first\n")
    first.read_until(b"first\r\n")
    first.close()
    second = attach(harness, shell_pod)
    try:
        second.send(0, b"echo still-$((1+1))\n")
        assert b"still-2" in second.read_until(b"still-2")
    finally:
        second.close()


def test_exec_with_tty_gets_a_terminal(harness: Harness, shell_pod: dict[str, Any]) -> None:
    query = "container=debugger&stdin=1&stdout=1&tty=1&command=sh&command=-c&command=tty%3B%20stty%20size"
    terminal = Terminal(harness.url(shell_pod, "exec", query))
    terminal.resize(90, 30)
    status = terminal.read_to_end()
    assert (b"/dev/pts/" in terminal.output, status) == (True, {"metadata": {}, "status": "Success"})


def test_log_follow_streams_what_the_container_prints(harness: Harness) -> None:
    import urllib.request

    word = uuid.uuid4().hex
    container = {"name": "c", "image": BUSYBOX, "command": ["sh", "-c", f"echo {word}; sleep 600"]}
    pod = harness.start_pod(make_pod([container]))
    harness.recorder.wait_for(pod["metadata"]["name"], "c", is_running)
    url = harness.url(pod, "log", "container=c&follow=true").replace("ws://", "http://")
    with urllib.request.urlopen(url, timeout=WAIT_SECONDS) as response:
        assert response.readline().decode() == f"{word}\n"


def test_log_of_a_finished_container(harness: Harness) -> None:
    container = {"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "echo one; echo two >&2"]}
    pod = make_pod([container])
    pod["spec"]["restartPolicy"] = "Never"
    harness.start_pod(pod)
    harness.recorder.wait_for(pod["metadata"]["name"], "c", is_terminated)
    assert sorted(logs_of(harness, pod, "c").splitlines()) == ["one", "two"]


def test_attach_to_a_container_that_is_not_running_is_refused(harness: Harness) -> None:
    container = {"name": "app", "image": "gcr.io/distroless/missing-for-attach:1"}
    pod = harness.start_pod(make_pod([container]))
    harness.recorder.wait_for(
        pod["metadata"]["name"], "app", lambda s: s.get("waiting", {}).get("reason") == "ErrImagePull"
    )
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        Terminal(harness.url(pod, "attach", "container=app&stdout=1"))
    assert refused.value.status_code == 500


def test_attach_without_tty_pipes_stdin_to_the_container(harness: Harness) -> None:
    container = {"name": "cat", "image": BUSYBOX, "command": ["cat"], "stdin": True}
    pod = make_pod([container])
    pod["spec"]["restartPolicy"] = "Never"
    harness.start_pod(pod)
    harness.recorder.wait_for(pod["metadata"]["name"], "cat", is_running)
    terminal = Terminal(harness.url(pod, "attach", "container=cat&stdin=1&stdout=1&stderr=1"))
    try:
        terminal.send(0, b"piped words\n")
        assert b"piped words\n" in terminal.read_until(b"piped words\n")
    finally:
        terminal.close()


def test_v5_close_of_stdin_ends_the_containers_input(harness: Harness) -> None:
    container = {"name": "cat", "image": BUSYBOX, "command": ["cat"], "stdin": True, "stdinOnce": True}
    pod = make_pod([container])
    pod["spec"]["restartPolicy"] = "Never"
    harness.start_pod(pod)
    harness.recorder.wait_for(pod["metadata"]["name"], "cat", is_running)
    terminal = Terminal(harness.url(pod, "attach", "container=cat&stdin=1&stdout=1&stderr=1"))
    try:
        terminal.send(0, b"last line\n")
        terminal.read_until(b"last line\n")
        terminal.send(255, bytes([0]))
        state = harness.recorder.wait_for(pod["metadata"]["name"], "cat", is_terminated)
    finally:
        terminal.close()
    assert state["terminated"]["exitCode"] == 0
