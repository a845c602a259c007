"""A small scripted HTTP server on 127.0.0.1 for hostile-input tests (fake registries, fake API answers).

A test maps `(method, path)` to a callable that writes the whole answer through the handler it is given
(`(method, "*")` catches every path). Helpers write the usual hostile shapes: an answer at once, a body
trickled byte by byte, a long stream. Every request is recorded (method, path, headers) so a test can
assert what kdebug sent, and what reached the server. Closing the server ends trickles at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[["ScriptedHandler"], None]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class ScriptedHandler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass

    def _dispatch(self) -> None:
        hostile = self.server.hostile
        hostile.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = hostile.routes.get((self.command, self.path.split("?", 1)[0])) or hostile.routes.get(
            (self.command, "*")
        )
        try:
            if route is None:
                respond(self, 404, b'{"errors": [{"code": "NOT_FOUND"}]}')
            else:
                route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: that is often the point of the test
        finally:
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch  # noqa: N815 (the base's names)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hostile: HostileServer


class HostileServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self.bytes_sent = 0
        self._httpd = _Server(("127.0.0.1", 0), ScriptedHandler)
        self._httpd.hostile = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def route(self, method: str, path: str, answer: Route) -> None:
        self.routes[(method, path)] = answer

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def respond(
    handler: ScriptedHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    length: bool = True,
) -> None:
    """The whole answer at once; `length=False` leaves Content-Length out (the body ends with the socket)."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    _write(handler, body)


def trickle(
    handler: ScriptedHandler, status: int, body: bytes, interval: float, headers: dict[str, str] | None = None
) -> None:
    """Headers at once (with the true Content-Length), then the body one byte per `interval` seconds."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.flush()
    stopping = handler.server.hostile.stopping
    for index in range(len(body)):
        if stopping.wait(interval):
            return
        _write(handler, body[index : index + 1])


def stream(
    handler: ScriptedHandler,
    status: int,
    chunk: bytes,
    total: int,
    headers: dict[str, str] | None = None,
    declare_length: bool = True,
    pause: float = 0.0,
) -> None:
    """`total` bytes of `chunk` repeated (never all in memory), `pause` seconds between chunks."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if declare_length:
        handler.send_header("Content-Length", str(total))
    handler.end_headers()
    stopping = handler.server.hostile.stopping
    left = total
    while left > 0 and not (pause and stopping.wait(pause)) and not stopping.is_set():
        piece = chunk[: min(len(chunk), left)]
        _write(handler, piece)
        left -= len(piece)


def _write(handler: ScriptedHandler, data: bytes) -> None:
    handler.wfile.write(data)
    handler.wfile.flush()
    handler.server.hostile.bytes_sent += len(data)
