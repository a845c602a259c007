"""streaming.run_stream against a real websocket server (aiohttp, 127.0.0.1) speaking the channel protocol."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import struct
import termios
import threading

import pytest
import websocket
from aiohttp import WSMsgType, web

from kdebug.kube import channels, streaming


class ChannelServer:
    """Records what the client sends; answers with a script of frames once stdin is closed."""

    def __init__(self, protocols: tuple[str, ...], replies: list[bytes], answer_pings: bool = True):
        self.protocols = protocols
        self.answer_pings = answer_pings
        self.replies = replies
        self.received: list[tuple[str, bytes]] = []
        self.done = threading.Event()
        self.pinged_twice = threading.Event()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        assert started.wait(10)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/attach", self._handle)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=self.protocols, autoping=False, timeout=0.5)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.PING:
                self.received.append(("ping", b""))
                if sum(1 for kind, _ in self.received if kind == "ping") >= 2:
                    self.pinged_twice.set()
                if self.answer_pings:
                    await ws.pong(message.data)
            elif message.type == WSMsgType.BINARY:
                self.received.append(("binary", message.data))
                if message.data == channels.close_stdin_frame() or b"quit" in message.data:
                    break
            else:
                break
        for reply in self.replies:
            await ws.send_bytes(reply)
        await ws.close()
        self.done.set()
        return ws

    def connect(self, protocols: tuple[str, ...] = channels.SUBPROTOCOLS) -> websocket.WebSocket:
        ws = websocket.WebSocket(enable_multithread=True)
        ws.connect(f"ws://127.0.0.1:{self.port}/attach", subprotocols=list(protocols))
        return ws

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def channel_server():
    servers: list[ChannelServer] = []

    def make(protocols=(channels.V5_PROTOCOL,), replies=(), answer_pings=True) -> ChannelServer:
        servers.append(ChannelServer(protocols, list(replies), answer_pings))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def pipe_with(data: bytes) -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


class Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass


EXIT_3 = channels.encode_frame(
    channels.ERROR,
    json.dumps(
        {
            "status": "Failure",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        }
    ).encode(),
)


def test_stdin_is_sent_then_half_closed_on_v5(channel_server):
    server = channel_server(replies=[channels.encode_frame(channels.STDOUT, b"out")])
    stdin = pipe_with(b"hello\n")
    out = Sink()
    result = streaming.run_stream(
        server.connect(), streaming.StreamTarget(stdin_fd=stdin, stdout=out, stderr=out)
    )
    os.close(stdin)
    sent = [data for kind, data in server.received if kind == "binary"]
    assert sent == [b"\x00hello\n", bytes([255, 0])]
    assert out.data == b"out"
    assert result.protocol == channels.V5_PROTOCOL


def test_status_channel_gives_exit_code(channel_server):
    server = channel_server(replies=[EXIT_3])
    stdin = pipe_with(b"")
    result = streaming.run_stream(
        server.connect(), streaming.StreamTarget(stdin_fd=stdin, stdout=Sink(), stderr=Sink())
    )
    os.close(stdin)
    assert (result.status.exit_code, result.lost) == (3, False)


def test_v4_falls_back_and_closes_socket_at_eof(channel_server):
    server = channel_server(protocols=(channels.V4_PROTOCOL,))
    stdin = pipe_with(b"data")
    result = streaming.run_stream(
        server.connect(), streaming.StreamTarget(stdin_fd=stdin, stdout=Sink(), stderr=Sink())
    )
    os.close(stdin)
    assert result.protocol == channels.V4_PROTOCOL
    assert server.done.wait(5)
    assert [d for k, d in server.received if k == "binary"] == [b"\x00data"]


def test_idle_session_is_kept_alive_with_pings(channel_server):
    server = channel_server()
    read_end, write_end = os.pipe()
    ws = server.connect()

    def quit_after_pings() -> None:
        server.pinged_twice.wait(10)
        os.write(write_end, b"quit")

    threading.Thread(target=quit_after_pings, daemon=True).start()
    streaming.run_stream(
        ws, streaming.StreamTarget(stdin_fd=read_end, stdout=Sink(), stderr=Sink()), ping_interval=0.05
    )
    os.close(read_end)
    os.close(write_end)
    assert sum(1 for kind, _ in server.received if kind == "ping") >= 2


def test_silent_peer_is_declared_lost(channel_server):
    server = channel_server(answer_pings=False)  # like a server gone without closing the connection
    read_end, write_end = os.pipe()
    result = streaming.run_stream(
        server.connect(),
        streaming.StreamTarget(stdin_fd=read_end, stdout=Sink(), stderr=Sink()),
        ping_interval=0.05,
    )
    os.close(read_end)
    os.close(write_end)
    assert (result.status, result.lost) == (None, True)


class PromptFirstSocket:
    """Sends a prompt at once; a send while the reader runs waits for that prompt (a busy machine's order)."""

    subprotocol = channels.V5_PROTOCOL
    sock = None

    def __init__(self) -> None:
        self.prompt_delivered = threading.Event()
        self.frames = [
            (websocket.ABNF.OPCODE_BINARY, channels.encode_frame(channels.STDOUT, b"# ")),
            (websocket.ABNF.OPCODE_CLOSE, b""),
        ]

    def recv_data_frame(self, control_frame: bool = False) -> tuple[int, websocket.ABNF]:
        opcode, data = self.frames.pop(0)
        return opcode, websocket.ABNF(opcode=opcode, data=data)

    def send_binary(self, payload: bytes) -> int:
        if any(t.name == "kdebug-ws-reader" for t in threading.enumerate()):
            assert self.prompt_delivered.wait(5)
        return len(payload)

    def ping(self, payload: str | bytes = "") -> None:
        pass

    def close(self, status: int = 1000, reason: str | bytes = b"", timeout: float | None = None) -> None:
        pass

    def abort(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def test_initial_size_is_reported_before_any_output():
    main_fd, tty_fd = os.openpty()
    fcntl.ioctl(tty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 43, 132, 0, 0))
    ws = PromptFirstSocket()
    seen: list[object] = []

    def output(data: bytes) -> None:
        seen.append(data)
        ws.prompt_delivered.set()

    target = streaming.StreamTarget(
        stdin_fd=tty_fd,
        stdout=Sink(),
        stderr=None,
        tty=True,
        on_output=output,
        on_resize=lambda cols, rows: seen.append((cols, rows)),
    )
    try:
        streaming.run_stream(ws, target)
    finally:
        os.close(main_fd)
        os.close(tty_fd)
    assert seen == [(132, 43), b"# "]
