"""PURE: the Kubernetes channel protocol used by attach/exec websockets (channel.k8s.io v4/v5).

Each binary message is one channel byte followed by the payload: 0 stdin, 1 stdout, 2 stderr,
3 error/status (a `Status` JSON), 4 resize (JSON `{"Width":W,"Height":H}`), 255 close (v5 only:
payload is the channel to half-close).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5_PROTOCOL = "v5.channel.k8s.io"
V4_PROTOCOL = "v4.channel.k8s.io"
SUBPROTOCOLS = (V5_PROTOCOL, V4_PROTOCOL)


def encode_frame(channel: int, payload: bytes = b"") -> bytes:
    return bytes([channel]) + payload


def decode_frame(message: bytes) -> tuple[int, bytes]:
    """(channel, payload); an empty message is (-1, b"") so callers can skip it."""
    if not message:
        return -1, b""
    return message[0], message[1:]


def resize_frame(cols: int, rows: int) -> bytes:
    # kubectl sends the JSON followed by a newline
    return encode_frame(RESIZE, json.dumps({"Width": cols, "Height": rows}).encode() + b"\n")


def close_stdin_frame() -> bytes:
    """v5: half-close stdin so the remote process reads EOF."""
    return encode_frame(CLOSE, bytes([STDIN]))


def initial_resize_frames(cols: int, rows: int) -> list[bytes]:
    """size+1 then the real size, like kubectl: the change makes the remote screen redraw."""
    return [resize_frame(cols + 1, rows + 1), resize_frame(cols, rows)]


@dataclass(frozen=True)
class RemoteStatus:
    """A decoded channel-3 message: the remote exit code, or an error message with no exit code."""

    exit_code: int | None
    message: str = ""
    reason: str = ""


def parse_status(payload: bytes) -> RemoteStatus:
    """Status JSON -> exit code: Success is 0, NonZeroExitCode carries it in details.causes (ExitCode)."""
    try:
        body = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        # v1-style plain-text error
        return RemoteStatus(None, payload.decode("utf-8", "replace").strip())
    if not isinstance(body, dict):
        return RemoteStatus(None, str(body))
    if body.get("status") == "Success":
        return RemoteStatus(0)
    message = str(body.get("message", ""))
    reason = str(body.get("reason", ""))
    if reason == "NonZeroExitCode":
        for cause in (body.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return RemoteStatus(int(cause.get("message", "")), message, reason)
                except ValueError:
                    break
    return RemoteStatus(None, message, reason)
