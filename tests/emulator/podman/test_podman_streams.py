"""Attach, exec and logs bridged to real podman containers over the websocket channel protocol."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
import websocket

from tests.emulator.podman.harness import (
    WAIT_SECONDS,
    Harness,
    exec_in,
    is_running,
    is_terminated,
    logs_of,
    make_pod,
)

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


# --- logs read from the container's CRI log file ---


def gated(script: str, before: str = "") -> list[str]:
    """A command that runs `before`, prints `ready`, waits until the test writes to /go (a fifo), then
    runs `script`."""
    return ["sh", "-c", f"{before} mkfifo /go; echo ready; read x < /go; {script}"]


def read_through_ready(response: Any) -> bytes:
    lines = []
    while (line := response.readline()) not in (b"ready\n", b""):
        lines.append(line)
    return b"".join([*lines, line])


def open_gate(harness: Harness, pod: dict[str, Any]) -> None:
    """Write to the gate over exec. Once the gate opens, the container may run to its end before the
    exec reports: the runtime then kills the exec (137), as a kubelet does; the output the caller
    checks next is what proves the gate opened."""
    output, status = exec_in(harness, pod, "c", ["sh", "-c", "echo go > /go"])
    causes = (status.get("details") or {}).get("causes") or [{}]
    killed_by_the_containers_end = causes[0].get("message") == "137"
    assert status == {"metadata": {}, "status": "Success"} or killed_by_the_containers_end, output


def log_url(harness: Harness, pod: dict[str, Any], query: str) -> str:
    return harness.url(pod, "log", f"container=c&{query}").replace("ws://", "http://")


def start_once(harness: Harness, command: list[str]) -> dict[str, Any]:
    pod = make_pod([{"name": "c", "image": BUSYBOX, "command": command}])
    pod["spec"]["restartPolicy"] = "Never"
    return harness.start_pod(pod)


def follow_through_exit(harness: Harness, script: str) -> bytes:
    """Follow the log of a running container, let it run `script` and exit; what the stream carried."""
    pod = start_once(harness, gated(script))
    harness.recorder.wait_for(pod["metadata"]["name"], "c", is_running)
    with urllib.request.urlopen(log_url(harness, pod, "follow=true"), timeout=WAIT_SECONDS) as response:
        head = read_through_ready(response)
        open_gate(harness, pod)
        return head + response.read()  # returns only once the server ends the stream


def finished_log(harness: Harness, script: str, query: str = "") -> bytes:
    pod = start_once(harness, ["sh", "-c", script])
    harness.recorder.wait_for(pod["metadata"]["name"], "c", is_terminated)
    with urllib.request.urlopen(log_url(harness, pod, query), timeout=WAIT_SECONDS) as response:
        return response.read()


def test_log_follow_ends_with_all_output_after_the_container_exits(harness: Harness) -> None:
    assert follow_through_exit(harness, "echo one; echo two; echo three") == b"ready\none\ntwo\nthree\n"


def test_log_follow_keeps_output_printed_right_before_exit(harness: Harness) -> None:
    expected = "".join(f"{n}\n" for n in range(1, 20001)).encode()
    assert follow_through_exit(harness, "seq 1 20000") == b"ready\n" + expected


LONG_LINES = "head -c 20000 /dev/zero | tr '\\0' a; echo; head -c 10000 /dev/zero | tr '\\0' b"


def test_log_follow_joins_partial_records_of_long_lines(harness: Harness) -> None:
    assert follow_through_exit(harness, LONG_LINES) == b"ready\n" + b"a" * 20000 + b"\n" + b"b" * 10000


def test_log_of_a_finished_container_joins_partial_records(harness: Harness) -> None:
    assert finished_log(harness, LONG_LINES) == b"a" * 20000 + b"\n" + b"b" * 10000


def test_log_timestamps_prefix_each_line_as_the_kubelet_does(harness: Harness) -> None:
    lines = finished_log(harness, "echo one; echo two", "timestamps=true").decode().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
    assert [re.fullmatch(f"{stamp} (one|two)", line) is not None for line in lines] == [True, True]


def test_log_tail_lines_of_a_finished_container(harness: Harness) -> None:
    assert finished_log(harness, "seq 1 10", "tailLines=3") == b"8\n9\n10\n"


def test_log_follow_with_tail_lines_starts_at_the_tail(harness: Harness) -> None:
    pod = start_once(harness, gated("echo after", before="seq 1 5;"))
    harness.recorder.wait_for(pod["metadata"]["name"], "c", is_running)
    with urllib.request.urlopen(log_url(harness, pod, "follow=true"), timeout=WAIT_SECONDS) as response:
        read_through_ready(response)  # now all of it is in the log file
    with urllib.request.urlopen(
        log_url(harness, pod, "follow=true&tailLines=2"), timeout=WAIT_SECONDS
    ) as response:
        head = read_through_ready(response)
        open_gate(harness, pod)
        assert head + response.read() == b"5\nready\nafter\n"


def test_log_follow_of_a_crash_looping_container_ends_with_its_log(harness: Harness) -> None:
    pod = harness.start_pod(
        make_pod([{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "echo ran; exit 1"]}])
    )
    harness.recorder.wait_for(
        pod["metadata"]["name"], "c", lambda s: s.get("waiting", {}).get("reason") == "CrashLoopBackOff"
    )
    with urllib.request.urlopen(log_url(harness, pod, "follow=true"), timeout=WAIT_SECONDS) as response:
        assert response.read().startswith(b"ran\n")


def test_log_with_a_bad_tail_lines_is_refused(harness: Harness) -> None:
    pod = start_once(harness, ["true"])
    harness.recorder.wait_for(pod["metadata"]["name"], "c", is_terminated)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(log_url(harness, pod, "tailLines=-1"), timeout=WAIT_SECONDS)
    assert (refused.value.code, json.loads(refused.value.read())["message"]) == (
        400,
        'invalid value for tailLines: "-1"',
    )
