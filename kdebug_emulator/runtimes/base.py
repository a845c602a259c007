"""The seam between the API server and a container runtime, both ways.

`ContainerEvents` is what a runtime calls on the server (container state changes); `Runtime` is exactly
what the server calls on a runtime. Both run inside the server's event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aiohttp import web

    from kdebug_emulator.images import ImageTable


class ContainerEvents(Protocol):
    """Implemented by the server; called from inside the event loop."""

    def container_state(
        self,
        namespace: str,
        pod: str,
        container: str,
        state: dict[str, Any],
        *,
        ephemeral: bool = False,
        ready: bool | None = None,
        image_id: str | None = None,
        restart_count: int | None = None,
    ) -> None: ...


@runtime_checkable
class Runtime(Protocol):
    """Runs a pod's containers and answers its attach/exec/log requests, as a kubelet does."""

    name: str
    # how long containers started from now on stay in ContainerCreating; None: until their pod goes
    create_delay: float | None

    async def start_pod(self, pod: dict[str, Any]) -> None: ...

    async def start_ephemeral(self, pod: dict[str, Any], container: dict[str, Any]) -> None: ...

    async def stop_pod(self, namespace: str, name: str) -> None: ...

    async def shutdown(self) -> None: ...

    async def handle_attach(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse: ...

    async def handle_exec(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse: ...

    async def handle_log(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse: ...


class RuntimeFactory(Protocol):
    """What `Emulator(runtime=...)` accepts besides a runtime's name: builds the runtime at startup."""

    def __call__(
        self, events: ContainerEvents, workdir: Path, images: ImageTable, *, create_delay: float | None
    ) -> Runtime: ...
