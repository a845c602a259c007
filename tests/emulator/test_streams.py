"""attach/exec/log over real websockets and HTTP against real processes and ptys."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from kdebug_emulator.streams import (
    CLOSE,
    ERROR,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    V1,
    V4,
    V5,
    choose_subprotocol,
    parse_resize,
    parse_stream_options,
    query_bool,
)
from tests.emulator.test_runtime import TIMEOUT, RuntimeHarness, alive, make_container, make_pod, wait_gone

# --- pure protocol pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([V4, V5], V5),
        ([V4, "v3.channel.k8s.io"], V4),
        ([V1], V1),
        (["base64.channel.k8s.io"], None),
        ([], None),
    ],
    ids=["prefers-v5", "v4", "v1", "base64-only", "none"],
)
def test_subprotocol_negotiation(offered: list[str], chosen: str | None) -> None:
    assert choose_subprotocol(offered) == chosen


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], False), (["true"], True), (["1"], True), (["false"], False), (["0"], False), (["No"], False)],
    ids=["absent", "true", "one", "false", "zero", "no"],
)
def test_query_bool_reads_like_the_api_server(values: list[str], expected: bool) -> None:
    assert query_bool(values) is expected


def test_tty_drops_stderr() -> None:
    options = parse_stream_options(
        {"stdout": ["true"], "stderr": ["true"], "tty": ["true"]}, "c", exec_=False
    )
    assert (options.stdout, options.stderr) == (True, False)


@pytest.mark.parametrize(
    "payload",
    [b'{"Width":0,"Height":10}', b"not json", b'{"Width":"x"}'],
    ids=["zero", "garbage", "bad-type"],
)
def test_bad_resize_is_ignored(payload: bytes) -> None:
    assert parse_resize(payload) is None


# --- a small websocket client -------------------------------------------------------------------------


class Channels:
    """A websocket-client connection that collects what arrives on each channel."""

    def __init__(self, url: str, protocols: list[str] | None = None):
        self.ws = websocket.create_connection(url, subprotocols=protocols or [V5], timeout=TIMEOUT)
        self.received: dict[int, bytes] = {STDOUT: b"", STDERR: b"", ERROR: b""}
        self.closed = False

    @property
    def protocol(self) -> str | None:
        return self.ws.getsubprotocol()  # type: ignore[no-any-return]

    def send(self, channel: int, data: bytes) -> None:
        self.ws.send_binary(bytes([channel]) + data)

    def resize(self, width: int, height: int) -> None:
        self.send(RESIZE, json.dumps({"Width": width, "Height": height}).encode())

    def read_until(self, done: Callable[[Channels], bool]) -> None:
        """Receive frames until `done(self)` or the server closes (bounded by the socket timeout)."""
        while not done(self):
            if self.closed:
                raise AssertionError(f"closed before the condition held; got {self.received}")
            opcode, data = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.closed = True
            elif data:
                self.received[data[0]] = self.received.get(data[0], b"") + data[1:]

    def wait_output(self, needle: bytes, channel: int = STDOUT) -> None:
        self.read_until(lambda c: needle in c.received[channel])

    def wait_closed(self) -> None:
        self.read_until(lambda c: c.closed)

    def status(self) -> dict[str, Any]:
        self.wait_closed()
        return json.loads(self.received[ERROR])  # type: ignore[no-any-return]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[RuntimeHarness]:
    running = RuntimeHarness(tmp_path)
    yield running
    running.close()


def debug_pod(harness: RuntimeHarness, **debugger: Any) -> dict:
    """A demo pod plus a running ephemeral container named `debugger`."""
    pod = harness.start_pod(make_pod())
    harness.start_ephemeral(pod, make_container("debugger", **debugger))
    harness.events.wait_for("debugger", "running")
    return pod


def attach(harness: RuntimeHarness, query: str, protocols: list[str] | None = None) -> Channels:
    return Channels(harness.url("web", "attach", f"container=debugger&{query}"), protocols)


def exit_code_of(status: dict[str, Any]) -> int:
    if status["status"] == "Success":
        return 0
    return int(status["details"]["causes"][0]["message"])


TTY_QUERY = "stdin=true&stdout=true&tty=true"
PIPE_QUERY = "stdin=true&stdout=true&stderr=true"


@pytest.fixture
def shell(harness: RuntimeHarness) -> Iterator[Channels]:
    debug_pod(harness, command=["sh"], stdin=True, tty=True)
    channels = attach(harness, TTY_QUERY)
    yield channels
    channels.close()


@pytest.fixture
def cat(harness: RuntimeHarness) -> dict:
    return debug_pod(harness, command=["cat"], stdin=True)


# --- attach ------------------------------------------------------------------------------------------


def test_attach_with_tty_runs_commands(shell: Channels) -> None:
    shell.send(STDIN, b"echo hello\n")
    shell.wait_output(b"\nhello\r\n")


def test_attach_resize_sets_the_terminal_size(shell: Channels) -> None:
    shell.resize(100, 40)
    shell.send(STDIN, b"stty size\n")
    shell.wait_output(b"40 100")


def test_terminal_starts_at_80x24(shell: Channels) -> None:
    shell.send(STDIN, b"stty size\n")
    shell.wait_output(b"24 80")


def test_attach_ends_with_success_like_containerd_and_closes(shell: Channels) -> None:
    shell.send(STDIN, b"exit 3\n")
    assert shell.status() == {"metadata": {}, "status": "Success"}
    assert shell.closed


def test_attach_without_tty_pipes_stdin(harness: RuntimeHarness, cat: dict) -> None:
    channels = attach(harness, PIPE_QUERY)
    channels.send(STDIN, b"ping\n")
    channels.wait_output(b"ping\n")
    channels.close()


def test_v5_close_of_stdin_ends_cat_with_success(harness: RuntimeHarness, cat: dict) -> None:
    channels = attach(harness, PIPE_QUERY)
    channels.send(CLOSE, bytes([STDIN]))
    assert channels.status() == {"metadata": {}, "status": "Success"}


def test_v4_is_negotiated_and_carries_the_status(harness: RuntimeHarness, cat: dict) -> None:
    channels = exec_channels(harness, ["sh", "-c", "exit 4"], protocols=[V4])
    assert channels.protocol == V4
    assert exit_code_of(channels.status()) == 4


def test_v5_is_preferred_when_offered(harness: RuntimeHarness, cat: dict) -> None:
    channels = attach(harness, PIPE_QUERY, ["v4.channel.k8s.io", V5])
    assert channels.protocol == V5
    channels.close()


def refused(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Status code and Status body of a request the server refuses before upgrading."""
    request = urllib.request.Request(
        url,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            **headers,
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refusal:
        urllib.request.urlopen(request, timeout=TIMEOUT)
    return refusal.value.code, json.loads(refusal.value.read())


def test_no_subprotocol_is_refused_with_400(harness: RuntimeHarness, cat: dict) -> None:
    code, body = refused(harness.url("web", "attach", f"container=debugger&{PIPE_QUERY}", "http"), {})
    assert code == 400
    assert (body["kind"], body["reason"]) == ("Status", "BadRequest")


def test_no_stream_requested_is_refused_with_400(harness: RuntimeHarness, cat: dict) -> None:
    url = harness.url("web", "attach", "container=debugger&tty=true", "http")
    code, body = refused(url, {"Sec-WebSocket-Protocol": V5})
    assert code == 400
    assert body["message"] == "you must specify at least 1 of stdin, stdout, stderr"


def test_attach_to_a_container_that_is_not_running_is_refused(harness: RuntimeHarness) -> None:
    pod = harness.start_pod(make_pod())
    harness.start_ephemeral(pod, make_container("debugger", "example.test/nope:1"))
    harness.events.wait_for("debugger", "ErrImagePull")
    url = harness.url("web", "attach", f"container=debugger&{TTY_QUERY}", "http")
    code, body = refused(url, {"Sec-WebSocket-Protocol": V5})
    assert code == 500
    assert (
        body["message"]
        == 'Internal error occurred: unable to upgrade connection: container not found ("debugger")'
    )


def test_disconnected_attach_client_does_not_end_the_process(harness: RuntimeHarness, cat: dict) -> None:
    first = attach(harness, PIPE_QUERY)
    first.ws.sock.close()  # vanish without a close handshake
    second = attach(harness, PIPE_QUERY)
    second.send(STDIN, b"still here\n")
    second.wait_output(b"still here\n")
    second.close()
    assert alive(harness.pid_of(cat, "debugger"))


def test_stdin_once_closes_stdin_when_the_first_attach_ends(harness: RuntimeHarness) -> None:
    debug_pod(harness, command=["cat"], stdin=True, stdinOnce=True)
    first = attach(harness, PIPE_QUERY)
    first.close()
    assert harness.events.wait_for("debugger", "Completed").state["terminated"]["exitCode"] == 0


def test_v1_protocol_sends_no_status_on_success(harness: RuntimeHarness, cat: dict) -> None:
    channels = exec_channels(harness, ["true"], protocols=[V1])
    channels.wait_closed()
    assert channels.received[ERROR] == b""


# --- exec --------------------------------------------------------------------------------------------


def exec_channels(
    harness: RuntimeHarness,
    command: list[str],
    query: str = "stdout=true&stderr=true",
    protocols: list[str] | None = None,
) -> Channels:
    commands = "&".join(f"command={urllib.parse.quote(part)}" for part in command)
    return Channels(harness.url("web", "exec", f"container=debugger&{query}&{commands}"), protocols)


def test_exec_reports_the_exit_code_as_containerd_words_it(harness: RuntimeHarness, cat: dict) -> None:
    status = exec_channels(harness, ["sh", "-c", "exit 7"]).status()
    assert status == {
        "metadata": {},
        "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "7"}]},
    }


def test_exec_separates_stdout_and_stderr(harness: RuntimeHarness, cat: dict) -> None:
    channels = exec_channels(harness, ["sh", "-c", "echo out; echo err >&2"])
    assert channels.status() == {"metadata": {}, "status": "Success"}
    assert (channels.received[STDOUT], channels.received[STDERR]) == (b"out\n", b"err\n")


def test_exec_with_tty_gets_a_terminal(harness: RuntimeHarness, cat: dict) -> None:
    channels = exec_channels(harness, ["sh", "-c", "tty -s && echo is-a-tty"], "stdout=true&tty=true")
    channels.wait_closed()
    assert b"is-a-tty" in channels.received[STDOUT]


def test_exec_of_a_missing_binary_is_an_internal_error(harness: RuntimeHarness, cat: dict) -> None:
    status = exec_channels(harness, ["no-such-tool"]).status()
    assert status["reason"] == "InternalError"
    assert 'exec: "no-such-tool": executable file not found in $PATH' in status["message"]


def test_exec_process_ends_when_the_client_goes_away(harness: RuntimeHarness, cat: dict) -> None:
    channels = exec_channels(harness, ["sh", "-c", "echo $$; exec sleep 1000"])
    channels.wait_output(b"\n")
    pid = int(channels.received[STDOUT])
    channels.ws.sock.close()
    assert wait_gone(pid)


def test_exec_without_command_is_refused(harness: RuntimeHarness, cat: dict) -> None:
    url = harness.url("web", "exec", "container=debugger&stdout=true", "http")
    code, body = refused(url, {"Sec-WebSocket-Protocol": V5})
    assert (code, body["reason"]) == (400, "BadRequest")


# --- logs --------------------------------------------------------------------------------------------


def get_log(harness: RuntimeHarness, query: str = "") -> bytes:
    url = harness.url("web", "log", f"container=job&{query}", "http")
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.read()  # type: ignore[no-any-return]


@pytest.fixture
def finished_job(harness: RuntimeHarness) -> None:
    pod = harness.start_pod(make_pod())
    harness.start_ephemeral(
        pod, make_container("job", command=["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"])
    )
    harness.events.wait_for("job", "Completed")


def test_log_has_output_produced_before_any_attach(harness: RuntimeHarness, finished_job: None) -> None:
    assert get_log(harness) == b"line1\nline2\nline3\nline4\nline5\n"


def test_log_tail_lines(harness: RuntimeHarness, finished_job: None) -> None:
    assert get_log(harness, "tailLines=2") == b"line4\nline5\n"


def test_log_timestamps(harness: RuntimeHarness, finished_job: None) -> None:
    assert get_log(harness, "tailLines=1&timestamps=true") == b"2026-01-02T03:04:05.000000000Z line5\n"


def test_log_follow_streams_new_lines_until_the_container_ends(harness: RuntimeHarness) -> None:
    pod = harness.start_pod(make_pod())
    harness.start_ephemeral(pod, make_container("job", command=["cat"], stdin=True))
    harness.events.wait_for("job", "running")
    url = harness.url("web", "log", "container=job&follow=true", "http")
    with urllib.request.urlopen(url, timeout=TIMEOUT) as follow:
        writer = Channels(harness.url("web", "attach", f"container=job&{PIPE_QUERY}"))
        writer.send(STDIN, b"first\n")
        assert follow.readline() == b"first\n"
        writer.send(STDIN, b"second\n")
        assert follow.readline() == b"second\n"
        writer.send(CLOSE, bytes([STDIN]))
        assert follow.readline() == b""


def test_log_of_a_container_that_never_started_is_refused(harness: RuntimeHarness) -> None:
    pod = harness.start_pod(make_pod())
    harness.start_ephemeral(pod, make_container("job", "example.test/nope:1"))
    harness.events.wait_for("job", "ImagePullBackOff")
    with pytest.raises(urllib.error.HTTPError) as refusal:
        get_log(harness)
    body = json.loads(refusal.value.read())
    assert (refusal.value.code, body["message"]) == (
        400,
        'container "job" in pod "web" is waiting to start: trying and failing to pull image',
    )


def test_attach_can_report_the_exit_code_like_a_kubelet(tmp_path: Path) -> None:
    harness = RuntimeHarness(tmp_path, attach_exit_codes=True)
    try:
        debug_pod(harness, command=["sh"], stdin=True, tty=True)
        channels = attach(harness, TTY_QUERY)
        channels.send(STDIN, b"exit 3\n")
        status = channels.status()
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
        assert channels.closed
    finally:
        harness.close()


def test_previous_log_is_the_last_run_before_a_restart(tmp_path: Path) -> None:
    harness = RuntimeHarness(tmp_path, restart_backoff=0.01)
    try:
        harness.start_pod(
            make_pod(containers=[make_container("job", command=["sh", "-c", "echo run; exit 1"])])
        )
        harness.events.wait_for("job", "running", count=2)
        assert get_log(harness, "previous=true") == b"run\n"
    finally:
        harness.close()


def test_previous_log_without_a_restart_is_refused(harness: RuntimeHarness, finished_job: None) -> None:
    with pytest.raises(urllib.error.HTTPError) as refusal:
        get_log(harness, "previous=true")
    assert (
        json.loads(refusal.value.read())["message"]
        == 'previous terminated container "job" in pod "web" not found'
    )


def test_stdin_a_process_never_reads_does_not_block_the_runtime(harness: RuntimeHarness) -> None:
    debug_pod(harness, command=["sleep", "1000"], stdin=True)
    flood = attach(harness, PIPE_QUERY)
    flood.send(STDIN, b"x" * (1024 * 1024))  # far beyond a pipe's buffer
    assert exec_channels(harness, ["true"]).status() == {"metadata": {}, "status": "Success"}
    flood.close()


def test_ephemeral_container_learns_its_targets_pid(harness: RuntimeHarness) -> None:
    pod = harness.start_pod(make_pod())
    harness.events.wait_for("app", "running")
    job = make_container("job", command=["sh", "-c", "echo $KDEBUG_TARGET_PID"], targetContainerName="app")
    harness.start_ephemeral(pod, job)
    harness.events.wait_for("job", "Completed")
    assert get_log(harness) == f"{harness.pid_of(pod, 'app')}\n".encode()
