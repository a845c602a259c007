"""The podman runtime under test: a PodmanRuntime on its own event loop behind a tiny aiohttp app (the
routes the API server would route to it), a recorder of the container states it reports, and helpers
that start pods, exec into them and read their logs."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from kdebug_emulator.images import ImageTable
from kdebug_emulator.runtimes.podman import PodmanRuntime
from tests.fixtures.pods import build_pod

WAIT_SECONDS = 30.0
State = dict[str, Any]


class Recorder:
    """ContainerEvents that keeps every reported state and lets tests wait for one."""

    def __init__(self) -> None:
        self.states: list[tuple[str, str, str, State, dict[str, Any]]] = []
        self._changed = threading.Condition()

    def container_state(self, namespace: str, pod: str, container: str, state: State, **extra: Any) -> None:
        with self._changed:
            self.states.append((namespace, pod, container, state, extra))
            self._changed.notify_all()

    def history(self, pod: str, container: str) -> list[State]:
        with self._changed:
            return [s for _, p, c, s, _ in self.states if p == pod and c == container]

    def wait_for(
        self, pod: str, container: str, predicate: Callable[[State], bool], timeout: float = WAIT_SECONDS
    ) -> State:
        def found() -> State | None:
            return next((s for s in self.history(pod, container) if predicate(s)), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"{pod}/{container}: no such state in {self.history(pod, container)}")
        return found()  # type: ignore[return-value]

    def wait_until(self, condition: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise AssertionError(f"condition not met; states: {self.states[-5:]}")

    def wait_running(self, pod: str, container: str) -> State:
        return self.wait_for(pod, container, lambda s: "running" in s or "terminated" in s)


def is_running(state: State) -> bool:
    return "running" in state


class Harness:
    """A PodmanRuntime on a background event loop, reachable over real HTTP/websockets."""

    def __init__(self, workdir: Path, registry_host: str):
        self.recorder = Recorder()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runtime: PodmanRuntime = self.call(self._make_runtime(workdir, registry_host))
        self.port = self.call(self._serve())

    async def _make_runtime(self, workdir: Path, registry_host: str) -> PodmanRuntime:
        return PodmanRuntime(
            self.recorder,
            workdir,
            ImageTable(),
            registry_host=registry_host,
            pull_backoff=2,
            restart_backoff=0.5,
        )

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/{kind}", self._route)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _route(self, request: web.Request) -> web.StreamResponse:
        pod = self.pods[(request.match_info["ns"], request.match_info["name"])]
        container = request.query.get("container", pod["spec"]["containers"][0]["name"])
        handler = {
            "attach": self.runtime.handle_attach,
            "exec": self.runtime.handle_exec,
            "log": self.runtime.handle_log,
        }[request.match_info["kind"]]
        return await handler(request, pod, container)

    def call(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = pod
        self.call(self.runtime.start_pod(copy.deepcopy(pod)))
        return pod

    def add_ephemeral(self, pod: dict[str, Any], container: dict[str, Any]) -> None:
        pod.setdefault("spec", {}).setdefault("ephemeralContainers", []).append(container)
        self.call(self.runtime.start_ephemeral(copy.deepcopy(pod), copy.deepcopy(container)))

    def url(self, pod: dict[str, Any], kind: str, query: str) -> str:
        meta = pod["metadata"]
        return f"ws://127.0.0.1:{self.port}/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/{kind}?{query}"

    def close(self) -> None:
        self.call(self.runtime.shutdown())
        self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def make_pod(containers: list[dict[str, Any]], *, security_context: dict[str, Any] | None = None) -> dict:
    return build_pod(
        typed=False,
        name="p-" + uuid.uuid4().hex[:8],
        namespace="t",
        uid=str(uuid.uuid4()),
        containers=containers,
        restart_policy="Always",
        security_context=security_context or None,
    )


def exec_in(harness: Harness, pod: dict[str, Any], container: str, command: list[str]) -> tuple[str, dict]:
    """Run a command over the exec websocket; returns (stdout+stderr, the channel-3 Status)."""
    import urllib.parse

    import websocket

    query = urllib.parse.urlencode(
        [("container", container), ("stdout", "1"), ("stderr", "1")] + [("command", c) for c in command]
    )
    ws = websocket.create_connection(
        harness.url(pod, "exec", query), subprotocols=["v5.channel.k8s.io"], timeout=WAIT_SECONDS
    )
    output, status = b"", {}
    try:
        while True:
            frame = ws.recv()
            if not frame:
                break
            if frame[0] in (1, 2):
                output += frame[1:]
            elif frame[0] == 3:
                status = json.loads(frame[1:])
    except websocket.WebSocketConnectionClosedException:
        pass
    finally:
        ws.close()
    return output.decode(errors="replace"), status


def status_exit_code(status: dict[str, Any]) -> int:
    if status.get("status") == "Success":
        return 0
    return int(status["details"]["causes"][0]["message"])


def logs_of(harness: Harness, pod: dict[str, Any], container: str) -> str:
    import urllib.request

    url = harness.url(pod, "log", f"container={container}").replace("ws://", "http://")
    with urllib.request.urlopen(url, timeout=WAIT_SECONDS) as response:
        return response.read().decode(errors="replace")


def is_terminated(state: State) -> bool:
    return "terminated" in state


def run_debugger(harness: Harness, pod: dict[str, Any], container: dict[str, Any]) -> tuple[int, str]:
    """Add an ephemeral container, wait until it ends; its exit code and its output."""
    harness.add_ephemeral(pod, container)
    state = harness.recorder.wait_for(pod["metadata"]["name"], container["name"], is_terminated)
    return state["terminated"]["exitCode"], logs_of(harness, pod, container["name"])
