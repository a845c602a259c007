"""Hostile API servers over a real socket (issue 13, items 5 and 8): redirects, bodies of the wrong type,
deep nesting, pods of the wrong shape, broken watch streams, huge and trickled bodies.

kdebug is pointed at the scripted server (plain http in a kubeconfig with a token user) and run through
its real CLI. Each answer must end as one `error:` line with its documented exit code, in bounded time
and memory, with no traceback, and the session store must hold the attach as a failed session.
"""

from __future__ import annotations

import copy
import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdebug import config
from kdebug.errors import ExitCode
from kdebug.kube import client as kube_client
from kdebug.kube import resolve
from tests.fixtures.kdebug_cli import Result
from tests.hostile.server import HostileServer, ScriptedHandler, respond, stream, trickle

POD_PATH = "/api/v1/namespaces/demo/pods/web"
PATCH_PATH = POD_PATH + "/ephemeralcontainers"
PODS_PATH = "/api/v1/namespaces/demo/pods"
MAX_MESSAGE = 400  # an error line quoting a server's message: the client caps the message at 300
MAX_LINE = 1010  # any error line, whatever it quotes: "error: " and errors.MAX_ERROR_CHARS

POD: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "web", "namespace": "demo", "uid": "u1", "resourceVersion": "5"},
    "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "gcr.io/distroless/static:nonroot"}]},
    "status": {"phase": "Running", "containerStatuses": [{"name": "app", "state": {"running": {}}}]},
}
NOT_FOUND = json.dumps({"kind": "Status", "apiVersion": "v1", "code": 404, "message": "not here"}).encode()

Answer = Callable[[ScriptedHandler], None]
DEBUG_CONTAINER: dict[str, str] = {}  # server host -> the name of the debug container kdebug asked for


def with_pod(**changes: Any) -> bytes:
    """POD with `section.key=value` changes, e.g. with_pod(spec=[]) or with_pod(**{"metadata.name": 5})."""
    pod = copy.deepcopy(POD)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = pod
        for parent in parents:
            node = node[parent]
        node[last] = value
    return json.dumps(pod).encode()


def body(data: bytes, status: int = 200) -> Answer:
    return lambda handler: respond(handler, status, data, {"Content-Type": "application/json"})


def status_json(code: int, message: str, reason: str = "Invalid") -> bytes:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason}
    return json.dumps({**status, "code": code}).encode()


def watch_lines(*lines: bytes) -> Answer:
    return lambda handler: respond(handler, 200, b"".join(line + b"\n" for line in lines), length=False)


def api_server(server: HostileServer, pod: Answer, watch: Answer | None = None) -> None:
    """An API server with the pod `web` in `demo` answered by `pod`, its PATCH answered with POD, and
    its watch by `watch`; every other request (reviews, namespace, node) gets a 404."""

    def answer(handler: ScriptedHandler) -> None:
        path, _, query = handler.path.partition("?")
        if path == POD_PATH:
            pod(handler)
        elif path == PATCH_PATH:  # the debug container's name, for a watch answer to name it
            patch = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
            DEBUG_CONTAINER[server.host] = patch["spec"]["ephemeralContainers"][-1]["name"]
            respond(handler, 200, json.dumps(POD).encode())
        elif path == PODS_PATH and "watch=true" in query and watch is not None:
            watch(handler)
        else:
            respond(handler, 404, NOT_FOUND)

    for method in ("GET", "POST", "PATCH"):
        server.route(method, "*", answer)


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hostile", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "main", "context": {"cluster": "hostile", "user": "u", "namespace": "demo"}}],
        "current-context": "main",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def attach(run_kdebug: Any, server: HostileServer, tmp_path: Path) -> tuple[Result, float, int]:
    """`kdebug attach web -- true` against `server`: the result, seconds taken, peak traced bytes."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url(""))
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = run_kdebug(
            "attach", "web", "--kubeconfig", str(kubeconfig), "--timeout", "20s", "--", "true"
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, time.monotonic() - started, peak


def assert_one_error_line(result: Result, code: ExitCode, *words: str, limit: int = MAX_MESSAGE) -> str:
    assert result.code == code, result.err
    assert "Traceback" not in result.err, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.err
    assert len(errors[0]) <= limit, errors[0][:1000]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def assert_recorded_as_failed(run_kdebug: Any, code: ExitCode, limit: int = MAX_MESSAGE) -> dict[str, Any]:
    listed = run_kdebug("sessions", "list", "-o", "json")
    assert listed.code == 0, listed.err
    (session,) = json.loads(listed.out)["sessions"]
    assert session["status"] == "failed", session
    assert session["exit_code"] == code, session
    assert session["error"] and len(session["error"]) <= limit, session["error"][:1000]
    return session


NESTED = b"[" * 100_000 + b"]" * 100_000


def start_failure(message: str) -> Answer:
    """A watch whose pod says the debug container cannot pull its image, with `message` as the reason."""

    def answer(handler: ScriptedHandler) -> None:
        name = DEBUG_CONTAINER[handler.server.hostile.host]
        waiting = {"waiting": {"reason": "ErrImagePull", "message": message}}
        pod = with_pod(**{"status.ephemeralContainerStatuses": [{"name": name, "state": waiting}]})
        watch_lines(b'{"type": "MODIFIED", "object": ' + pod + b"}")(handler)

    return answer


# id -> (the pod's answer, the watch's answer, exit code, words in the error line)
CASES: dict[str, tuple[Answer, Answer | None, ExitCode, tuple[str, ...]]] = {
    "302 to elsewhere": (
        lambda h: respond(h, 302, b"", {"Location": "http://login.example.com/sso"}),
        None,
        ExitCode.UNREACHABLE,
        ("302", "redirect"),
    ),
    "empty object": (body(b"{}"), None, ExitCode.API_ERROR, ("not a valid Pod", "metadata")),
    "a list": (body(b"[1,2,3]"), None, ExitCode.API_ERROR, ("not a JSON object",)),
    "null": (body(b"null"), None, ExitCode.API_ERROR, ("not a JSON object",)),
    "a string": (body(b'"str"'), None, ExitCode.API_ERROR, ("not a JSON object",)),
    "nested 100k levels": (body(NESTED), None, ExitCode.API_ERROR, ("nested too deeply",)),
    "not JSON": (body(b"<html>login</html>"), None, ExitCode.API_ERROR, ("not JSON",)),
    "spec is a list": (body(with_pod(spec=[])), None, ExitCode.API_ERROR, ("spec",)),
    "containers is a string": (
        body(with_pod(**{"spec.containers": "x"})),
        None,
        ExitCode.API_ERROR,
        ("spec.containers",),
    ),
    "name is a number": (
        body(with_pod(**{"metadata.name": 5})),
        None,
        ExitCode.API_ERROR,
        ("metadata.name",),
    ),
    "status is a string": (body(with_pod(status="up")), None, ExitCode.API_ERROR, ("status",)),
    "container entry is a number": (
        body(with_pod(**{"spec.containers": [7]})),
        None,
        ExitCode.API_ERROR,
        ("spec.containers",),
    ),
    "container state is a list": (
        body(with_pod(**{"status.containerStatuses": [{"name": "app", "state": []}]})),
        None,
        ExitCode.API_ERROR,
        ("state",),
    ),
    "object over 16 MiB": (
        lambda h: stream(h, 200, b'{"a":"' + b"x" * 65536, 20 * 1024 * 1024),
        None,
        ExitCode.API_ERROR,
        ("larger than 16 MiB",),
    ),
    "watch of garbage lines": (
        body(json.dumps(POD).encode()),
        watch_lines(b"garbage", b"\x00\xff{{{"),
        ExitCode.API_ERROR,
        ("watch", "not JSON"),
    ),
    "watch event of the wrong type": (
        body(json.dumps(POD).encode()),
        watch_lines(b"[1,2,3]"),
        ExitCode.API_ERROR,
        ("watch", "not a JSON object"),
    ),
    "watch object of the wrong type": (
        body(json.dumps(POD).encode()),
        watch_lines(b'{"type": "MODIFIED", "object": "x"}'),
        ExitCode.API_ERROR,
        ("watch", "object"),
    ),
    "watch pod of the wrong shape": (
        body(json.dumps(POD).encode()),
        watch_lines(b'{"type": "MODIFIED", "object": ' + with_pod(**{"status.containerStatuses": 3}) + b"}"),
        ExitCode.API_ERROR,
        ("status.containerStatuses",),
    ),
    "watch line over 16 MiB": (
        body(json.dumps(POD).encode()),
        lambda h: stream(h, 200, b"x" * 65536, 20 * 1024 * 1024, declare_length=False),
        ExitCode.API_ERROR,
        ("watch", "16 MiB"),
    ),
    "watch ERROR with a 1 MB message": (
        body(json.dumps(POD).encode()),
        watch_lines(
            b'{"type": "ERROR", "object": ' + status_json(500, "w" * 1_000_000, "InternalError") + b"}"
        ),
        ExitCode.API_ERROR,
        ("watching web failed", "wwww"),
    ),
    "a 1 MB start-failure message": (
        body(json.dumps(POD).encode()),
        start_failure("p" * 1_000_000),
        ExitCode.START_FAILED,
        ("ErrImagePull", "pppp"),
    ),
    "10 MB Status message": (
        body(status_json(422, "m" * 10_000_000), 422),
        None,
        ExitCode.API_ERROR,
        ("mmmm",),
    ),
    "error body that is not JSON": (
        body(b"<h1>bad gateway</h1>" * 10, 400),
        None,
        ExitCode.API_ERROR,
        ("HTTP 400",),
    ),
}

# server text inside a message kdebug words itself (not a server error's message): capped at the line
QUOTED_BY_KDEBUG = {"a 1 MB start-failure message"}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_hostile_answer_ends_as_one_error_line_and_a_failed_session(
    case: str, hostile_server: HostileServer, run_kdebug: Any, tmp_path: Path
) -> None:
    pod, watch, code, words = CASES[case]
    limit = MAX_LINE if case in QUOTED_BY_KDEBUG else MAX_MESSAGE
    api_server(hostile_server, pod, watch)
    result, seconds, peak = attach(run_kdebug, hostile_server, tmp_path)
    assert_one_error_line(result, code, *words, limit=limit)
    assert seconds < 30, seconds
    assert peak < 128 * 1024 * 1024, peak  # 16 MiB bodies at most, a few copies while parsing
    assert_recorded_as_failed(run_kdebug, code, limit=limit)


def test_a_300_mb_error_body_is_streamed_not_held(
    hostile_server: HostileServer, run_kdebug: Any, tmp_path: Path
) -> None:
    """Sent as it is produced (never built in memory); kdebug keeps 64 KiB of it and hangs up."""
    total = 300 * 1024 * 1024
    api_server(hostile_server, lambda h: stream(h, 400, b"E" * 65536, total, {"Content-Type": "text/plain"}))
    result, seconds, peak = attach(run_kdebug, hostile_server, tmp_path)
    assert_one_error_line(result, ExitCode.API_ERROR, "HTTP 400", "EEEE")
    assert peak < 32 * 1024 * 1024, peak
    assert hostile_server.bytes_sent < total // 10, hostile_server.bytes_sent
    assert seconds < 30, seconds
    assert_recorded_as_failed(run_kdebug, ExitCode.API_ERROR)


def test_a_body_trickled_past_the_request_timeout_is_given_up(
    hostile_server: HostileServer, run_kdebug: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One byte every 0.2 s: each read is within the socket timeout, the whole body is not."""
    monkeypatch.setattr(kube_client, "READ_TIMEOUT_S", 1.0)
    api_server(hostile_server, lambda h: trickle(h, 200, json.dumps(POD).encode(), 0.2))
    result, seconds, _ = attach(run_kdebug, hostile_server, tmp_path)
    assert_one_error_line(result, ExitCode.UNREACHABLE, "timed out")
    assert seconds < 15, seconds
    assert_recorded_as_failed(run_kdebug, ExitCode.UNREACHABLE)


# -- every failure is recorded, expected or not ---------------------------------------------------------
def test_an_unexpected_exception_is_one_line_and_a_failed_session(
    hostile_server: HostileServer, run_kdebug: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug kdebug did not foresee (here: resolution raising a RuntimeError with a long message)."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom\n" + "x" * 5000)

    monkeypatch.setattr(resolve, "resolve_target", broken)
    api_server(hostile_server, body(json.dumps(POD).encode()))
    result, _, _ = attach(run_kdebug, hostile_server, tmp_path)
    assert_one_error_line(result, ExitCode.INTERNAL, "internal error: RuntimeError: boom")
    session = assert_recorded_as_failed(run_kdebug, ExitCode.INTERNAL)
    assert session["error_kind"] == "internal"
    assert session["error"].startswith("internal error: RuntimeError: boom")


def test_ctrl_c_is_recorded_as_interrupted(
    hostile_server: HostileServer, run_kdebug: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(resolve, "resolve_target", interrupted)
    api_server(hostile_server, body(json.dumps(POD).encode()))
    result, _, _ = attach(run_kdebug, hostile_server, tmp_path)
    assert_one_error_line(result, ExitCode.INTERRUPTED, "interrupted")
    listed = run_kdebug("sessions", "list", "-o", "json")
    (session,) = json.loads(listed.out)["sessions"]
    assert (session["status"], session["exit_code"]) == ("interrupted", ExitCode.INTERRUPTED), session


def test_an_unexpected_exception_outside_a_session_is_one_line(
    run_kdebug: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("bad state")

    monkeypatch.setattr(config, "effective_config", broken)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert_one_error_line(result, ExitCode.INTERNAL, "internal error: ValueError: bad state")


@pytest.mark.parametrize("case", ["302 to elsewhere", "a list", "nested 100k levels", "spec is a list"])
def test_run_meets_the_same_answers_with_one_error_line(
    case: str, hostile_server: HostileServer, run_kdebug: Any, tmp_path: Path
) -> None:
    """`kdebug run` reads through the same client: the same checks, the same one line."""
    pod, _, code, words = CASES[case]
    api_server(hostile_server, pod)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", hostile_server.url(""))
    result = run_kdebug("run", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert_one_error_line(result, code, *words)


def test_headers_trickled_past_the_request_timeout_are_given_up(
    hostile_server: HostileServer, run_kdebug: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status line and headers one byte every 0.2 s: the deadline covers them as it covers the body."""
    monkeypatch.setattr(kube_client, "READ_TIMEOUT_S", 1.0)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"

    def trickled_head(handler: ScriptedHandler) -> None:
        stopping = handler.server.hostile.stopping
        for index in range(len(head)):
            if stopping.wait(0.2):
                return
            handler.wfile.write(head[index : index + 1])
            handler.wfile.flush()

    api_server(hostile_server, trickled_head)
    result, seconds, _ = attach(run_kdebug, hostile_server, tmp_path)
    assert_one_error_line(result, ExitCode.UNREACHABLE, "timed out")
    assert seconds < 15, seconds
    assert_recorded_as_failed(run_kdebug, ExitCode.UNREACHABLE)
