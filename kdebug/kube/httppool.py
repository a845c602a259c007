"""Keep-alive HTTP(S) connections to one server, on the standard library alone.

kdebug.kube.client sends every API request through this pool. It replaces urllib3, a large import for
what the client needs of it: one server, TLS from an SSLContext, separate connect and read timeouts,
streamed (chunked) bodies and reuse of idle connections across threads, which `http.client` does.

Connections are taken from the pool for one request and go back only once their response has been
read to the end and the server keeps them open; a response abandoned half-way (a watch left early)
closes its connection. A pooled connection the server has closed meanwhile is noticed before use.
"""

from __future__ import annotations

import functools
import http.client
import io
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit


class _DeadlineIO(io.RawIOBase):
    """The socket as http.client reads it, each read bounded by `deadline` (time.monotonic) when set:
    a server sending a byte at a time within the socket timeout is still cut off there."""

    def __init__(self, sock: socket.socket, deadline: float | None):
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._timeout = sock.gettimeout()
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out reading the answer")
            self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """An HTTPResponse whose status line, headers (and, through Response.read_capped, body) must
    arrive by the request's deadline."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: float | None = None, **kwargs: Any):
        super().__init__(sock, *args, **kwargs)
        self.fp.close()  # http.client's own reader: replaced before anything is read from it
        self.deadline_io = _DeadlineIO(sock, deadline)
        self.fp = io.BufferedReader(self.deadline_io)


class _Connection(http.client.HTTPConnection):
    """A plain or TLS connection with a connect timeout separate from the read timeout."""

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
    ):
        super().__init__(host, port, timeout=connect_timeout)
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname or host

    def connect(self) -> None:
        sock = socket.create_connection((_address(self.host), self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _keep_alive(sock)
        if self._ssl_context is not None:
            try:
                sock = self._ssl_context.wrap_socket(sock, server_hostname=_address(self._server_hostname))
            except BaseException:
                sock.close()
                raise
        self.sock = sock

    def dropped(self) -> bool:
        """True when an idle connection was closed by the server (readable while idle means EOF)."""
        if self.sock is None:
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


# TCP keepalive as client-go dials: a log follow of a quiet command reads nothing for as long as the
# command runs, so no read timeout can tell a silent stream from a dead one; probes after 30 s idle
# can (a peer gone without a FIN, e.g. dropped by a middlebox, is found within about a minute).
KEEPALIVE_IDLE_S = 30
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_PROBES = 3


def _keep_alive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    ):
        if hasattr(socket, option):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _address(host: str) -> str | bytes:
    """An ASCII host as bytes: the resolver and ssl would encode a str with the IDNA codec, which
    would then be imported by every command; bytes they take as they are."""
    return host.encode("ascii") if host.isascii() else host


class Response:
    """One response; `release()` (or reading it to the end through `read`) frees its connection."""

    def __init__(
        self,
        pool: ConnectionPool,
        connection: _Connection,
        raw: http.client.HTTPResponse,
        deadline: float | None = None,
    ):
        self._pool = pool
        self._connection: _Connection | None = connection
        self._raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.deadline = deadline  # time.monotonic() by which the whole answer must have arrived
        # the status line and headers came by the deadline; a streamed body (a watch, logs) is bounded
        # by the read timeout of each read only, unless read through read_capped
        self._deadline_io().deadline = None

    def read(self) -> bytes:
        try:
            return self._raw.read()
        finally:
            self.release()

    def read_capped(self, limit: int) -> tuple[bytes, bool]:
        """At most `limit` bytes of the body, and whether there was more (left unread: the connection
        is then closed). The read timeout bounds each socket read; `deadline` bounds the whole answer,
        so a server trickling a byte at a time cannot hold kdebug past it (TimeoutError)."""
        parts: list[bytes] = []
        size = 0
        self._deadline_io().deadline = self.deadline
        try:
            while size <= limit:
                chunk = self._raw.read1(min(65536, limit + 1 - size))
                if not chunk:
                    # read1 never marks a Content-Length body as done (its last call asks for 0 bytes):
                    # read() does, so the connection goes back to the pool instead of being closed
                    self._raw.read()
                    return b"".join(parts), False
                parts.append(chunk)
                size += len(chunk)
            return b"".join(parts)[:limit], True
        finally:
            self.release()

    def _deadline_io(self) -> _DeadlineIO:
        return self._raw.deadline_io  # type: ignore[attr-defined]

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        """The body as it arrives (chunked transfer encoding undone)."""
        while chunk := self._raw.read1(size):
            yield chunk

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._raw.isclosed() and not self._raw.will_close:
            self._pool.put_back(connection)
        else:  # unread body or the server ends the connection: it cannot carry another request
            self._raw.close()
            connection.close()


class ConnectionPool:
    """Idle connections to one `http(s)://host:port` server; more are opened when all are busy."""

    def __init__(
        self,
        server: str,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        maxsize: int = 4,
    ):
        parts = urlsplit(server)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self._ssl_context = ssl_context if parts.scheme == "https" else None
        self._server_hostname = server_hostname
        self._maxsize = max(1, maxsize)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        connect_timeout: float,
        read_timeout: float | None,
        idempotent: bool | None = None,
    ) -> Response:
        """Send one request and read the response's status and headers (the body is left to the caller).

        A reused connection that fails before any answer is retried once on a new one (the server had
        closed it between requests), unless the request may have had an effect: a POST, unless the
        caller says it is `idempotent` (a review, which changes nothing).
        """
        deadline = time.monotonic() + read_timeout if read_timeout else None
        connection, reused = self._take(connect_timeout)
        try:
            raw = self._exchange(connection, method, path, body, headers, read_timeout, deadline)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            connection.close()
            repeatable = idempotent if idempotent is not None else method.upper() != "POST"
            if not reused or not repeatable:
                raise
            connection = self._new(connect_timeout)
            raw = self._exchange_or_close(connection, method, path, body, headers, read_timeout, deadline)
        except BaseException:
            connection.close()
            raise
        return Response(self, connection, raw, deadline)

    def put_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self, connect_timeout: float) -> tuple[_Connection, bool]:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._new(connect_timeout), False
            if not connection.dropped():
                return connection, True
            connection.close()

    def _new(self, connect_timeout: float) -> _Connection:
        return _Connection(self.host, self.port, connect_timeout, self._ssl_context, self._server_hostname)

    def _exchange_or_close(self, connection: _Connection, *args: Any) -> http.client.HTTPResponse:
        try:
            return self._exchange(connection, *args)
        except BaseException:
            connection.close()
            raise

    def _exchange(
        self,
        connection: _Connection,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        read_timeout: float | None,
        deadline: float | None = None,
    ) -> http.client.HTTPResponse:
        if connection.sock is None:
            connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(read_timeout)
        connection.response_class = functools.partial(_DeadlineResponse, deadline=deadline)  # type: ignore[assignment]
        connection.request(method, self.base_path + path, body=body, headers=headers)
        return connection.getresponse()
