"""Clients going away (watches, streams, uploads) is normal: the server ends the request without logging
an error or a traceback."""

from __future__ import annotations

import logging
import socket
import ssl
import struct

import pytest
import websocket

from kdebug_emulator import Emulator

POD = "/api/v1/namespaces/default/pods/target"
DEBUGGER = {"name": "dbg", "image": "busybox:1.36", "command": ["sh"], "stdin": True, "tty": False}


def _connect(emulator) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", emulator.port), timeout=20)
    if not emulator.url.startswith("https://"):
        return raw
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _reset(sock: socket.socket) -> None:
    """Vanish like a killed client: a TCP reset, no TLS close_notify, no websocket close frame."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _send_and_vanish(emulator, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {emulator.token()}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    sock = _connect(emulator)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    _reset(sock)


def _wait_until_answered(emulator, path: str, count: int = 1) -> None:
    """The request log entry is written as the handler ends; a call onto the loop then lets aiohttp finish."""
    emulator.wait_for(lambda: sum(r["path"] == path for r in emulator.requests) >= count, timeout=20)
    emulator.get("namespaces", None, "default")


def _complaints(caplog) -> list[str]:
    return [
        f"{record.name} {record.levelname}: {record.getMessage()}"
        for record in caplog.records
        if record.name.split(".")[0] in ("aiohttp", "asyncio", "kdebug")
        and (record.levelno >= logging.WARNING or record.exc_info)
    ]


@pytest.fixture
def target(emulator, make_pod):
    emulator.apply(make_pod(name="target"))
    emulator.wait_for(lambda: emulator.get("pods", "default", "target")["status"]["phase"] == "Running")


@pytest.fixture
def plain_emulator(tmp_path):
    # Over plain TCP the request arrives before the reset does, so the server starts answering a client
    # that is already gone (over TLS the kernel drops the unread request along with the connection).
    with Emulator(tls=False, runtime="none", workdir=tmp_path / "plain") as emu:
        yield emu


def test_watch_client_gone_before_the_answer_starts_logs_nothing(plain_emulator, make_pod, caplog):
    for index in range(20):  # a long initial list: the reset lands before the answer starts
        plain_emulator.apply(make_pod(name=f"pod-{index}"))
    path = "/api/v1/namespaces/default/pods"
    for _ in range(3):
        _send_and_vanish(plain_emulator, "GET", path + "?watch=true", {})
    _wait_until_answered(plain_emulator, path, count=3)
    assert _complaints(caplog) == []
    assert {r["code"] for r in plain_emulator.requests if r["path"] == path} == {499}


@pytest.fixture
def tls_emulator(tmp_path):
    with Emulator(runtime="none", workdir=tmp_path / "tls") as emu:
        yield emu


def test_watch_client_closing_during_a_long_backlog_logs_nothing(tls_emulator, make_pod, caplog):
    for index in range(20):
        tls_emulator.apply(make_pod(name=f"pod-{index}"))
    path = "/api/v1/namespaces/default/pods"
    for _ in range(3):
        sock = _connect(tls_emulator)
        request = f"GET {path}?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tls_emulator.token()}"
        sock.sendall(request.encode() + b"\r\n\r\n")
        sock.close()  # no close_notify: the server meets a lost connection while it writes the backlog
    _wait_until_answered(tls_emulator, path, count=3)
    assert _complaints(caplog) == []


def test_watch_client_leaving_mid_watch_logs_nothing(emulator, make_pod, caplog):
    emulator.apply(make_pod(name="watched"))
    path = "/api/v1/namespaces/default/pods"
    sock = _connect(emulator)
    request = f"GET {path}?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {emulator.token()}\r\n\r\n"
    sock.sendall(request.encode())
    assert b"ADDED" in sock.recv(65536) + sock.recv(65536)  # headers, then the first event
    _reset(sock)
    emulator.apply(make_pod(name="after-the-client-left"))  # an event with nobody left to read it
    _wait_until_answered(emulator, path)
    assert _complaints(caplog) == []


def test_upload_cut_short_logs_nothing(plain_emulator, make_pod, caplog):
    plain_emulator.apply(make_pod(name="target"))
    path = POD + "/ephemeralcontainers"
    headers = {"Content-Type": "application/strategic-merge-patch+json", "Content-Length": "500"}
    _send_and_vanish(plain_emulator, "PATCH", path, headers, body=b'{"spec": {')
    _wait_until_answered(plain_emulator, path)
    assert _complaints(caplog) == []
    assert [r["code"] for r in plain_emulator.requests if r["path"] == path] == [499]


def test_log_follower_leaving_logs_nothing(emulator, target, caplog):
    path = POD + "/log"
    sock = _connect(emulator)
    request = (
        f"GET {path}?follow=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {emulator.token()}\r\n\r\n"
    )
    sock.sendall(request.encode())
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    _reset(sock)
    _wait_until_answered(emulator, path)
    assert _complaints(caplog) == []


def _start_debugger(api, emulator) -> None:
    patch = {"spec": {"ephemeralContainers": [{**DEBUGGER, "targetContainerName": "app"}]}}
    assert api.patch(POD + "/ephemeralcontainers", patch).status_code == 200

    def running() -> bool:
        statuses = emulator.get("pods", "default", "target")["status"].get("ephemeralContainerStatuses", [])
        return bool(statuses) and "running" in statuses[0]["state"]

    emulator.wait_for(running, timeout=20)


@pytest.mark.parametrize(
    "query",
    ["attach?container=dbg&stdin=true&stdout=true", "exec?container=dbg&command=sh&stdin=true&stdout=true"],
    ids=["attach", "exec"],
)
def test_stream_client_vanishing_logs_nothing(api, emulator, target, caplog, query):
    _start_debugger(api, emulator)
    ws = websocket.create_connection(
        emulator.url.replace("https://", "wss://") + f"{POD}/{query}",
        header=[f"Authorization: Bearer {emulator.token()}"],
        subprotocols=["v5.channel.k8s.io"],
        sslopt={"ca_certs": str(emulator.ca_path), "cert_reqs": ssl.CERT_REQUIRED},
        timeout=20,
    )
    ws.send_binary(b"\x00echo hi\n")
    _reset(ws.sock)
    _wait_until_answered(emulator, f"{POD}/{query.split('?')[0]}")
    assert _complaints(caplog) == []
