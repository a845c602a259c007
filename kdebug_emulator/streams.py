"""The server side of the Kubernetes websocket channel protocol (attach/exec), as kube-apiserver speaks it.

Every binary frame starts with a channel byte: 0 stdin (client->server), 1 stdout, 2 stderr,
3 error/status, 4 resize (JSON `{"Width":W,"Height":H}`), 255 close (v5: `[255, 0]` closes stdin).
The top half is pure (options, negotiation, frames, Status bodies); `ChannelSession` wraps an aiohttp
websocket.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from kdebug_emulator import status as st

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4, V1 = "v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"
SUBPROTOCOLS = (V5, V4, V1)  # server preference, best first
HEARTBEAT_SECONDS = 30.0  # pings keep idle sessions alive through proxies that cut silent connections


class StreamRequestError(Exception):
    """A refusal before the upgrade: carries the Status body to answer with."""

    def __init__(self, body: dict[str, Any]):
        super().__init__(body["message"])
        self.body = body


@dataclass(frozen=True)
class StreamOptions:
    container: str
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    command: tuple[str, ...] = ()


def query_bool(values: Sequence[str]) -> bool:
    """The API server's query-parameter bool: absent is false; "0", "f", "false", "n", "no" are false."""
    if not values:
        return False
    return values[0].lower() not in ("0", "f", "false", "n", "no")


def parse_stream_options(
    query: Mapping[str, Sequence[str]], default_container: str, *, exec_: bool
) -> StreamOptions:
    """Query parameters of pods/attach and pods/exec, checked like the kubelet checks them."""
    tty = query_bool(query.get("tty", []))
    stdin = query_bool(query.get("stdin", []))
    stdout = query_bool(query.get("stdout", []))
    stderr = query_bool(query.get("stderr", [])) and not tty  # a tty merges stderr into stdout
    if not (stdin or stdout or stderr):
        # the kubelet's wording (remotecommand.NewOptions), passed through by the API server
        raise StreamRequestError(st.bad_request("you must specify at least 1 of stdin, stdout, stderr"))
    command = tuple(query.get("command", []))
    if exec_ and not command:
        raise StreamRequestError(st.bad_request("you must specify at least one command for the container"))
    container = (query.get("container") or [default_container])[0] or default_container
    return StreamOptions(container, stdin, stdout, stderr, tty, command)


def offered_subprotocols(header_values: Iterable[str]) -> list[str]:
    """`Sec-WebSocket-Protocol` may be repeated and comma-separated."""
    return [p.strip() for value in header_values for p in value.split(",") if p.strip()]


def choose_subprotocol(offered: Iterable[str]) -> str | None:
    offered_set = set(offered)
    return next((p for p in SUBPROTOCOLS if p in offered_set), None)


def unsupported_protocols(offered: Sequence[str]) -> dict[str, Any]:
    # wsstream's handshake error, formatted as Go prints string slices
    return st.bad_request(
        f"requested protocol(s) are not supported: [{' '.join(offered)}]; supports [{' '.join(SUBPROTOCOLS)}]"
    )


def encode_frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def decode_frame(frame: bytes) -> tuple[int, bytes] | None:
    """(channel, payload), or None for an empty frame (which carries nothing)."""
    if not frame:
        return None
    return frame[0], frame[1:]


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """`{"Width":W,"Height":H}` -> (W, H); malformed or zero sizes are ignored, as the kubelet does."""
    try:
        size = json.loads(payload)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    if width <= 0 or height <= 0 or width > 0xFFFF or height > 0xFFFF:
        return None
    return width, height


def exit_status(exit_code: int, detail: str) -> dict[str, Any]:
    """The channel-3 Status for a finished process; `detail` is the runtime's error text."""
    if exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {detail}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


def exec_exit_status(exit_code: int, command: Sequence[str]) -> dict[str, Any]:
    """containerd's wording: `error executing command [sh -c exit 3], exit code 3` (Go's %v of a slice)."""
    return exit_status(exit_code, f"error executing command [{' '.join(command)}], exit code {exit_code}")


def attach_exit_status(exit_code: int) -> dict[str, Any]:
    # A real containerd ends every attach with Success whatever the exit code, and so does the emulator by
    # default; ProcessRuntime(attach_exit_codes=True) sends a kubelet-style NonZeroExitCode instead.
    return exit_status(exit_code, str(exit_code))


def internal_error_status(message: str) -> dict[str, Any]:
    """A runtime failure after the upgrade (e.g. the exec'd binary does not exist)."""
    body = st.internal_error(message)
    return {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}


def encode_status(protocol: str, status: dict[str, Any]) -> bytes | None:
    """v4/v5 send the Status JSON; v1 sends only a failure's message text and nothing on success."""
    if protocol == V1:
        return None if status.get("status") == "Success" else str(status.get("message", "")).encode()
    return json.dumps(status, separators=(",", ":")).encode()


def status_response(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=int(body.get("code", 500)))


# --- aiohttp side ---------------------------------------------------------------------------------


def is_websocket_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def negotiate(request: web.Request) -> str:
    """The chosen subprotocol, or StreamRequestError(400) when the client offers none we speak."""
    if not is_websocket_upgrade(request):
        raise StreamRequestError(st.bad_request("Upgrade request required"))
    offered = offered_subprotocols(request.headers.getall("Sec-WebSocket-Protocol", []))
    chosen = choose_subprotocol(offered)
    if chosen is None:
        raise StreamRequestError(unsupported_protocols(offered))
    return chosen


class ChannelSession:
    """One upgraded websocket speaking the channel protocol."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str):
        self.ws = ws
        self.protocol = protocol

    @classmethod
    async def open(cls, request: web.Request, protocol: str) -> ChannelSession:
        ws = web.WebSocketResponse(protocols=(protocol,), heartbeat=HEARTBEAT_SECONDS, max_msg_size=0)
        await ws.prepare(request)
        return cls(ws, protocol)

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, channel: int, data: bytes) -> None:
        if self.ws.closed or not data:
            return
        # a client that went away is noticed by the receive loop, which ends the session
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_bytes(encode_frame(channel, data))

    async def finish(self, status: dict[str, Any]) -> None:
        """Send the final Status on channel 3 (if the protocol carries one) and close."""
        payload = encode_status(self.protocol, status)
        if payload is not None:
            await self.send(ERROR, payload)
        if not self.ws.closed:
            await self.ws.close()

    async def frames(self) -> AsyncIterator[tuple[int, bytes]]:
        """Client frames until the client closes or goes away."""
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                frame = decode_frame(msg.data)
                if frame is not None:
                    yield frame
            elif msg.type == WSMsgType.ERROR:
                return
