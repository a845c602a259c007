"""The websocket stream loop for attach/exec: stdin out, stdout/stderr in, resizes, pings, status.

One reader thread takes frames off the websocket and writes them out; the calling (main) thread
waits on stdin and a wake-up pipe with `select`, so signals (SIGWINCH, SIGINT) are handled where
Python delivers them. Pings keep idle sessions from being cut by proxies and load balancers.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from kdebug.console import terminal
from kdebug.kube import channels
from kdebug.kube.channels import RemoteStatus
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    from kdebug.kube.api import WebSocketLike

websocket = lazy_module("websocket")  # for its frame opcodes: the connection itself comes from the client

PING_INTERVAL_S = 30.0
DEAD_PEER_PINGS = 2.5  # declare the connection dead after this many ping intervals without a frame


@dataclass(frozen=True)
class StreamResult:
    """How a stream ended: the remote status if one came, and whether the connection was lost."""

    status: RemoteStatus | None
    lost: bool
    protocol: str


@dataclass
class StreamTarget:
    """Where a session's bytes go and come from (the CLI passes the real streams, tests pass pipes)."""

    stdin_fd: int | None
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None
    tty: bool = False
    on_output: Callable[[bytes], None] | None = None
    on_resize: Callable[[int, int], None] | None = None


class _Reader(threading.Thread):
    """Reads frames until the socket closes; remembers the status and whether the close was clean."""

    def __init__(self, ws: WebSocketLike, target: StreamTarget, wake_fd: int):
        super().__init__(name="kdebug-ws-reader", daemon=True)
        self.ws = ws
        self.target = target
        self.wake_fd = wake_fd
        self.status: RemoteStatus | None = None
        self.lost = False
        self.finished = threading.Event()  # set before the wake-up byte, so the pump never waits again
        self.last_heard = time.monotonic()  # any frame, pongs included: silence means a dead peer

    def run(self) -> None:
        try:
            while True:
                opcode, frame = self.ws.recv_data_frame(control_frame=True)  # answers pings itself
                self.last_heard = time.monotonic()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT):
                    data = frame.data
                    self._handle(data if isinstance(data, bytes) else data.encode())
        except (websocket.WebSocketConnectionClosedException, OSError, websocket.WebSocketException):
            # a close after the status is the normal end; without a status the connection was lost
            self.lost = self.status is None
        finally:
            self.finished.set()
            with contextlib.suppress(OSError):
                os.write(self.wake_fd, b"x")

    def _handle(self, message: bytes) -> None:
        channel, payload = channels.decode_frame(message)
        if channel == channels.STDOUT:
            _write(self.target.stdout, payload)
            if self.target.on_output:
                self.target.on_output(payload)
        elif channel == channels.STDERR:
            _write(self.target.stderr or self.target.stdout, payload)
            if self.target.on_output:
                self.target.on_output(payload)
        elif channel == channels.ERROR and payload:
            self.status = channels.parse_status(payload)


def _write(stream: IO[bytes] | None, data: bytes) -> None:
    if stream is None or not data:
        return
    with contextlib.suppress(OSError, ValueError):
        stream.write(data)
        stream.flush()


def protocol_of(ws: WebSocketLike) -> str:
    return ws.subprotocol or ""


def run_stream(
    ws: WebSocketLike, target: StreamTarget, ping_interval: float = PING_INTERVAL_S
) -> StreamResult:
    """Pump one attach/exec websocket until it ends; raw mode and resizes when `target.tty`."""
    protocol = protocol_of(ws)
    wake_r, wake_w = os.pipe()
    reader = _Reader(ws, target, wake_w)
    resized = threading.Event()
    try:
        if target.tty and target.stdin_fd is not None:

            def note_resize() -> None:
                resized.set()
                with contextlib.suppress(OSError):
                    os.write(wake_w, b"r")

            # SIGWINCH is watched before the size is read, so no change is lost; the size is reported
            # before the reader starts, so the transcript's header has it ahead of any output
            with terminal.raw_mode(target.stdin_fd), terminal.on_resize(note_resize):
                _send_initial_size(ws, target)
                reader.start()
                _pump(ws, target, reader, wake_r, resized, protocol, ping_interval)
        else:
            reader.start()
            _pump(ws, target, reader, wake_r, resized, protocol, ping_interval)
    finally:
        if reader.finished.is_set():
            with contextlib.suppress(Exception):
                ws.close(timeout=1)
        else:  # interrupted or failed mid-stream: no close handshake, wake the reader now
            _abort(ws)
        if reader.is_alive():  # not started when raw mode failed
            reader.join(timeout=2)
        os.close(wake_r)
        os.close(wake_w)
    return StreamResult(status=reader.status, lost=reader.lost, protocol=protocol)


def _send_initial_size(ws: WebSocketLike, target: StreamTarget) -> None:
    assert target.stdin_fd is not None
    cols, rows = terminal.terminal_size(target.stdin_fd)
    # the container may have ended right after the upgrade: the reader reports how, as for later resizes
    with contextlib.suppress(Exception):
        for frame in channels.initial_resize_frames(cols, rows):
            ws.send_binary(frame)
    if target.on_resize:
        target.on_resize(cols, rows)


def _pump(
    ws: WebSocketLike,
    target: StreamTarget,
    reader: _Reader,
    wake_r: int,
    resized: threading.Event,
    protocol: str,
    ping_interval: float,
) -> None:
    """Forward stdin until the reader ends; send resizes and pings on the way."""
    stdin_open = target.stdin_fd is not None
    last_ping = time.monotonic()
    while not reader.finished.is_set():
        watched = [wake_r] + ([target.stdin_fd] if stdin_open and target.stdin_fd is not None else [])
        wait = max(0.0, ping_interval - (time.monotonic() - last_ping))
        readable, _, _ = select.select(watched, [], [], wait)
        if wake_r in readable:
            os.read(wake_r, 64)
        if resized.is_set():
            resized.clear()
            _send_resize(ws, target)
        if stdin_open and target.stdin_fd in readable:
            stdin_open = _forward_stdin(ws, target.stdin_fd, protocol)
        if time.monotonic() - last_ping >= ping_interval:
            if time.monotonic() - reader.last_heard > DEAD_PEER_PINGS * ping_interval:
                reader.lost = True  # no pong for several pings: the connection is half-open
                _abort(ws)
                return
            with contextlib.suppress(Exception):
                ws.ping()
            last_ping = time.monotonic()


def _abort(ws: WebSocketLike) -> None:
    """Drop the connection at once; shutdown (unlike close) also wakes the reader blocked in recv."""
    with contextlib.suppress(Exception):
        ws.sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        ws.shutdown()


def _send_resize(ws: WebSocketLike, target: StreamTarget) -> None:
    if target.stdin_fd is None:
        return
    cols, rows = terminal.terminal_size(target.stdin_fd)
    with contextlib.suppress(Exception):
        ws.send_binary(channels.resize_frame(cols, rows))
    if target.on_resize:
        target.on_resize(cols, rows)


def _forward_stdin(ws: WebSocketLike, fd: int, protocol: str) -> bool:
    """Send what stdin has; at EOF half-close (v5) or close the socket (v4). Returns stdin still open."""
    try:
        data = os.read(fd, 65536)
    except OSError:
        data = b""
    try:
        if data:
            ws.send_binary(channels.encode_frame(channels.STDIN, data))
            return True
        if protocol == channels.V5_PROTOCOL:
            ws.send_binary(channels.close_stdin_frame())
        else:
            ws.close(timeout=1)
    except Exception:  # the reader notices the broken socket and ends the loop
        pass
    return False
