"""A process hosting a PodmanRuntime the way the emulator does, for the shutdown tests.

Usage: python -m tests.emulator.podman.host_runtime WORKDIR REGISTRY_HOST (handler|atexit)
Starts a pod with an app and a debugger, prints `ready` once both run, then waits. On SIGTERM:
`handler` calls shutdown() as the emulator's server does; `atexit` just exits (the runtime's own
exit hook must clean up).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from kdebug_emulator.images import ImageTable
from kdebug_emulator.runtimes.podman import PodmanRuntime


class Events:
    def __init__(self) -> None:
        self.running: set[str] = set()
        self.changed = asyncio.Event()

    def container_state(self, namespace: str, pod: str, container: str, state: dict, **_: Any) -> None:
        if "running" in state:
            self.running.add(container)
        self.changed.set()


async def main(workdir: Path, registry_host: str, mode: str) -> None:
    events = Events()
    runtime = PodmanRuntime(events, workdir, ImageTable(), registry_host=registry_host)
    pod = {
        "metadata": {"name": "host", "namespace": "t", "uid": "0123456789"},
        "spec": {"containers": [{"name": "app", "image": "registry.kdebug.test/demo/web:1.0"}]},
    }
    await runtime.start_pod(pod)
    debugger = {
        "name": "dbg",
        "image": "docker.io/library/busybox:1.36.1",
        "command": ["sleep", "600"],
        "targetContainerName": "app",
    }
    while "app" not in events.running:
        events.changed.clear()
        await events.changed.wait()
    await runtime.start_ephemeral(pod, debugger)
    while "dbg" not in events.running:
        events.changed.clear()
        await events.changed.wait()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    if mode == "handler":
        await runtime.shutdown()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
