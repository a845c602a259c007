"""The seam between kdebug and the Kubernetes API: what every caller may use of a client.

`kdebug.kube.client.KubeClient` is the one implementation; tests pass it connected to the emulator.
Callers type their client parameter as `KubeApi`, never as the concrete class or `Any`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kdebug.kube.client import ClusterConfig


class KubeApi(Protocol):
    """Plain dicts in the API's JSON shape in and out; failures raise kdebug errors."""

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

    def websocket(self, path: str, query: list[tuple[str, str]], subprotocols: tuple[str, ...]) -> Any: ...
