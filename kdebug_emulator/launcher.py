"""What `kdebug demo` runs: the demo registry, the emulator with its runtime, then a kubeconfig or an attach.

The `demo` command itself (options and help) is `kdebug.cli.demo`, which loads this module only when it runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from kdebug.cli.main import main
from kdebug.errors import KdebugError, StartFailedError, UnreachableError, UsageError

# Imported here, not when the emulator starts: without the demo extra (aiohttp, cryptography) loading this
# module fails at once, and `kdebug demo` says which extra to install before it starts anything.
from kdebug_emulator.images import ImageTable
from kdebug_emulator.localregistry import available, start_registry
from kdebug_emulator.ocibuild import demo_mirror_config, push_demo_images
from kdebug_emulator.podman_images import push_podman_images
from kdebug_emulator.runtimes.base import ContainerEvents, Runtime, RuntimeFactory
from kdebug_emulator.runtimes.podman import PodmanRuntime, choose_runtime
from kdebug_emulator.server import Emulator

_READY_TIMEOUT = 60.0


class DemoRegistry:
    """The demo's local OCI registry holding its sample images, or nothing where it cannot run.

    Pods keep upstream-looking names (gcr.io/distroless/base-debian12:nonroot); the mirror rewrites
    that map them to this registry travel to kdebug in the kubeconfig's `kdebug.dev/config` cluster
    extension, and to the emulator's image table, as an air-gapped cluster's node mirrors would.
    """

    def __init__(self) -> None:
        self.registry: Any = None
        self.config: dict[str, Any] = {}
        self.image_mirrors: dict[str, str] = {}
        self.image_digests: dict[str, str] = {}

    def start(self, runnable: bool) -> None:
        """`runnable`: push images podman can run (the podman runtime pulls them from here)."""

        if not available():
            _say("Debian's docker-registry is not installed: image classification uses image names only")
            return
        try:
            self.registry = start_registry()
            if runnable:
                self.image_digests = push_podman_images(self.registry.host)
            else:
                self.image_digests = push_demo_images(self.registry.url)
        except (KdebugError, OSError) as exc:
            _say(f"the demo registry did not start ({exc}): image classification uses image names only")
            self.stop()
            return
        self.config = demo_mirror_config(self.registry.url, mirror_distroless=True)
        self.image_mirrors = {m["to"]: m["from"] for m in self.config["mirrors"]}
        _say(f"demo images are in the local registry {self.registry.url}")

    @property
    def kubeconfig_extensions(self) -> dict[str, Any] | None:
        return {"kdebug.dev/config": self.config} if self.config else None

    def stop(self) -> None:
        if self.registry is not None:
            self.registry.stop()
            self.registry = None


def _say(message: str) -> None:
    sys.stderr.write(f"kdebug demo: {message}\n")
    sys.stderr.flush()


def _choose_runtime(requested: str) -> str:
    if requested == "process":  # the CLI checked it is one of kdebug.cli.demo.RUNTIMES
        return "process"
    name, line = choose_runtime(requested)
    _say(line)
    return name


def runtime_factory(runtime: str, registry: DemoRegistry) -> str | RuntimeFactory:
    if runtime != "podman":
        return runtime
    host = registry.registry.host if registry.registry is not None else None

    def podman(
        events: ContainerEvents, workdir: Path, images: ImageTable, *, create_delay: float | None
    ) -> Runtime:
        # one registry for the demo: the images podman runs are the ones kdebug classifies
        return PodmanRuntime(
            events,
            workdir / "runtime",
            images,
            create_delay=create_delay,
            registry_host=host,
            own_registry=False,
        )

    return podman


def _start_emulator(port: int, registry: DemoRegistry, runtime: str) -> Emulator:

    emu = Emulator(
        demo=True,
        port=port,
        runtime=runtime_factory(runtime, registry),
        image_mirrors=registry.image_mirrors,
        image_digests=registry.image_digests,
    )
    try:
        emu.start()
    except RuntimeError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError):
            reason = os.strerror(cause.errno).lower() if cause.errno else str(cause)
            raise UnreachableError(
                f"cannot listen on 127.0.0.1:{port}: {reason}",
                hint="choose another --port, or 0 for any free port",
            ) from None
        raise UnreachableError(f"the demo cluster did not start: {exc}") from None
    return emu


def _wait_until_running(emu: Emulator) -> None:
    def all_running() -> bool:
        pods = emu.list("pods", "demo")
        return bool(pods) and all((p.get("status") or {}).get("phase") == "Running" for p in pods)

    try:
        emu.wait_for(all_running, timeout=_READY_TIMEOUT)
    except TimeoutError:
        raise StartFailedError("the demo pods did not reach Running") from None


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so every `finally` (emulator, registry, containers) runs."""


def _raise_terminated(*_: object) -> None:
    raise _Terminated


def _serve_until_signalled(emu: Emulator) -> None:
    """Block until SIGINT or SIGTERM; the emulator runs in its own thread meanwhile."""
    try:
        while True:
            threading.Event().wait(timeout=3600)
    except (KeyboardInterrupt, _Terminated):
        return


def _serve(emu: Emulator, kubeconfig: Path, extensions: dict[str, Any] | None) -> int:
    try:
        path = emu.write_kubeconfig(kubeconfig.absolute(), namespace="demo", extensions=extensions)
    except OSError as exc:
        raise UsageError(f"cannot write the kubeconfig {kubeconfig}: {exc.strerror}") from None
    sys.stdout.write(f"export KUBECONFIG={path}\n")
    sys.stdout.flush()
    sys.stderr.write(f"kdebug demo: serving {emu.url} (namespace demo); Ctrl-C to stop\n")
    sys.stderr.flush()
    _serve_until_signalled(emu)
    return 0


def _attach_now(emu: Emulator, extensions: dict[str, Any] | None) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="kdebug-demo-"))
    path = emu.write_kubeconfig(workdir / "kubeconfig", namespace="demo", extensions=extensions)
    sys.stderr.write(
        f"kdebug demo: a local cluster is running at {emu.url} (kubeconfig {path}).\n"
        "Attaching a debug container to pod web (a scratch image: no shell of its own).\n"
        "Its files are under /proc/1/root. Type exit to leave; the demo cluster stops then.\n"
    )
    sys.stderr.flush()
    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    try:
        return main(["attach", "web", "-n", "demo"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if saved is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = saved


def run_demo(runtime: str, port: int, write_kubeconfig: Path | None) -> int:
    """Run the demo cluster until the user leaves the shell (or, with a kubeconfig path, until a signal)."""
    # SIGTERM from here on unwinds like Ctrl-C, so nothing the demo started outlives it, even when
    # the signal comes while the cluster is still starting; SIGINT is made to raise even when the
    # shell that started a background demo set it to be ignored
    previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _run_demo(runtime, port, write_kubeconfig)
    except _Terminated:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _run_demo(runtime: str, port: int, write_kubeconfig: Path | None) -> int:
    chosen = _choose_runtime(runtime)
    registry = DemoRegistry()
    registry.start(runnable=chosen == "podman")
    try:
        emu = _start_emulator(port, registry, chosen)
        try:
            _wait_until_running(emu)
            if write_kubeconfig is not None:
                return _serve(emu, write_kubeconfig, registry.kubeconfig_extensions)
            return _attach_now(emu, registry.kubeconfig_extensions)
        finally:
            emu.stop()
    finally:
        registry.stop()
