"""The seam between kdebug and the Kubernetes API: what every caller may use of a client.

`kdebug.kube.client.KubeClient` is the one implementation; tests pass it connected to the emulator.
Callers type their client parameter as `KubeApi`, never as the concrete class or `Any`; pure modules
import it under TYPE_CHECKING only. `runtime_checkable` lets a test hold KubeClient to the protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import socket

    from kdebug.kube.client import ClusterConfig


class FrameLike(Protocol):
    """One websocket frame as websocket-client's ABNF carries it."""

    data: bytes | str


@runtime_checkable
class WebSocketLike(Protocol):
    """What kdebug's attach/exec streams use of websocket-client's `WebSocket`."""

    sock: socket.socket | None  # shut down to wake a reader blocked in recv

    @property
    def subprotocol(self) -> str | None: ...

    def recv_data_frame(self, control_frame: bool = False) -> tuple[int, FrameLike]: ...

    def send_binary(self, payload: bytes) -> int: ...

    def ping(self, payload: str | bytes = "") -> None: ...

    def close(self, status: int = ..., reason: str | bytes = ..., timeout: float | None = ...) -> None: ...

    def abort(self) -> None: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class KubeApi(Protocol):
    """Plain dicts in the API's JSON shape in and out; failures raise kdebug errors.

    Paths come from kdebug.kube.paths (each segment quoted); the client never re-quotes them.
    """

    cluster: ClusterConfig

    @property
    def server(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> dict: ...

    def get(self, path: str, query: dict[str, Any] | None = None) -> dict: ...

    def prefetch(self, path: str) -> None: ...

    def patch(self, path: str, body: dict, content_type: str) -> dict: ...

    def watch(self, path: str, query: dict[str, Any], timeout_s: float) -> Iterator[dict]: ...

    def stream_bytes(self, path: str, query: dict[str, Any]) -> Iterator[bytes]: ...

    def websocket(
        self, path: str, query: list[tuple[str, str]], subprotocols: tuple[str, ...]
    ) -> WebSocketLike: ...
