"""kdebug.kube.httppool against a real HTTP/1.1 server on 127.0.0.1: keep-alive reuse, servers that close
idle connections, abandoned streams, chunked bodies, timeouts."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kdebug.kube.httppool import ConnectionPool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server: _Server = self.server  # type: ignore[assignment]
        server.requests.append((self.command, self.path, self.client_address[1]))
        if self.path == "/close-after":
            self._answer(b"bye", close=True)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one\n", b"two\n", b"three\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"4\r\nline\r\n")
            self.wfile.flush()
            server.release.wait(10)
        else:
            self._answer(self.path.encode())

    def do_POST(self) -> None:  # noqa: N802
        server: _Server = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        server.requests.append((self.command, self.path, self.client_address[1]))
        self._answer(body)

    def _answer(self, body: bytes, close: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if close:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, int]] = []
        self.release = threading.Event()


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def _pool(server: _Server, base: str = "") -> ConnectionPool:
    return ConnectionPool(f"http://127.0.0.1:{server.server_address[1]}{base}")


def _get(pool: ConnectionPool, path: str) -> bytes:
    return pool.request("GET", path, None, {}, connect_timeout=5, read_timeout=5).read()


def test_requests_in_a_row_share_one_connection(server: _Server) -> None:
    pool = _pool(server)
    assert [_get(pool, f"/{n}") for n in range(3)] == [b"/0", b"/1", b"/2"]
    assert len({port for _, _, port in server.requests}) == 1


def test_capped_reads_in_a_row_share_one_connection(server: _Server) -> None:
    """The client reads every answer through read_capped: a whole body read that way frees the
    connection for the next request (each new one would cost a TLS handshake on a real cluster)."""
    pool = _pool(server)
    bodies = [
        pool.request("GET", f"/{n}", None, {}, connect_timeout=5, read_timeout=5).read_capped(1024)
        for n in range(3)
    ]
    assert bodies == [(b"/0", False), (b"/1", False), (b"/2", False)]
    assert len({port for _, _, port in server.requests}) == 1


def test_a_server_path_prefix_is_kept(server: _Server) -> None:
    assert _get(_pool(server, "/k8s/clusters/c-1/"), "/api") == b"/k8s/clusters/c-1/api"


def test_a_connection_the_server_closed_is_not_reused(server: _Server) -> None:
    pool = _pool(server)
    assert _get(pool, "/close-after") == b"bye"
    assert _get(pool, "/next") == b"/next"
    ports = [port for _, _, port in server.requests]
    assert ports[0] != ports[1]


def test_an_idle_connection_closed_by_the_server_is_replaced(server: _Server) -> None:
    pool = _pool(server)
    _get(pool, "/first")
    idle = pool._idle[0]
    assert idle.sock is not None
    idle.sock.shutdown(socket.SHUT_RDWR)  # as if the server had timed it out while idle
    assert _get(pool, "/second") == b"/second"


def test_a_chunked_body_arrives_whole_and_the_connection_is_reused(server: _Server) -> None:
    pool = _pool(server)
    response = pool.request("GET", "/chunked", None, {}, connect_timeout=5, read_timeout=5)
    assert b"".join(response.chunks()) == b"one\ntwo\nthree\n"
    response.release()
    _get(pool, "/after")
    assert len({port for _, _, port in server.requests}) == 1


def test_a_stream_left_half_read_closes_its_connection(server: _Server) -> None:
    pool = _pool(server)
    response = pool.request("GET", "/endless", None, {}, connect_timeout=5, read_timeout=5)
    assert next(response.chunks()) == b"line"
    response.release()
    assert pool._idle == []
    server.release.set()
    assert _get(pool, "/after") == b"/after"


def test_a_read_timeout_raises_timeout(server: _Server) -> None:
    pool = _pool(server)
    response = pool.request("GET", "/endless", None, {}, connect_timeout=5, read_timeout=0.2)
    chunks = response.chunks()
    assert next(chunks) == b"line"
    with pytest.raises(TimeoutError):
        next(chunks)
    response.release()


def test_a_post_body_goes_out(server: _Server) -> None:
    pool = _pool(server)
    response = pool.request("POST", "/echo", b'{"a": 1}', {"Content-Type": "application/json"}, 5, 5)
    assert response.read() == b'{"a": 1}'


def test_a_refused_connection_raises_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        pool = ConnectionPool(f"http://127.0.0.1:{port}")
        with pytest.raises(ConnectionRefusedError):
            pool.request("GET", "/", None, {}, connect_timeout=5, read_timeout=5)


def _server_that_drops_the_second_request() -> tuple[socket.socket, threading.Thread, list[bytes]]:
    """Answers the first request keep-alive, then closes the connection when the next one arrives, as
    a server does whose idle timeout fires just as the request is sent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:  # the test is over and closed the listener
                return
            with conn:
                while data := conn.recv(65536):
                    seen.append(data.split(b"\r\n", 1)[0])
                    if len(seen) == 2:
                        break  # close without answering
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread, seen


@pytest.mark.parametrize(
    ("method", "idempotent", "retried"),
    [("GET", None, True), ("POST", None, False), ("POST", True, True)],
    ids=["get", "post", "post-said-idempotent"],
)
def test_a_reused_connection_dropped_mid_request_retries_unless_it_may_have_acted(
    method: str, idempotent: bool | None, retried: bool
) -> None:
    listener, _thread, seen = _server_that_drops_the_second_request()
    with listener:
        pool = ConnectionPool(f"http://127.0.0.1:{listener.getsockname()[1]}")
        assert pool.request(method, "/one", b"", {}, 5, 5).read() == b"ok"
        if retried:
            assert pool.request(method, "/two", b"", {}, 5, 5, idempotent=idempotent).read() == b"ok"
            assert seen[-1] == f"{method} /two HTTP/1.1".encode()
        else:
            with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                pool.request(method, "/two", b"", {}, 5, 5, idempotent=idempotent)
            assert len(seen) == 2


def test_connections_probe_a_silent_peer_with_tcp_keepalive(server: _Server) -> None:
    pool = _pool(server)
    _get(pool, "/first")
    sock = pool._idle[0].sock
    assert sock is not None
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
