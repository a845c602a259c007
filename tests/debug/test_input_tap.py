"""The recording tap on the attach websocket is a whole WebSocketLike and copies only stdin frames."""

from __future__ import annotations

import websocket

from kdebug.debug.stream import _InputTap
from kdebug.kube.api import WebSocketLike


class SentFrames(websocket.WebSocket):
    """websocket-client's own class, so the tap is checked against the real surface, never connected."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    def send_binary(self, payload: bytes) -> int:
        self.frames.append(payload)
        return len(payload)


def test_the_tap_is_a_websocket_like() -> None:
    assert isinstance(_InputTap(SentFrames(), lambda data: None), WebSocketLike)


def test_stdin_frames_go_to_the_recorder_and_on_to_the_socket() -> None:
    recorded: list[bytes] = []
    ws = SentFrames()
    tap = _InputTap(ws, recorded.append)
    tap.send_binary(b"\x00ls\r")
    tap.send_binary(b'\x04{"Width":80,"Height":24}')
    tap.send_binary(b"\x00")
    assert recorded == [b"ls\r"]
    assert ws.frames == [b"\x00ls\r", b'\x04{"Width":80,"Height":24}', b"\x00"]
    assert tap.subprotocol == ws.subprotocol
