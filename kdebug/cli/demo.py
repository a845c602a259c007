"""`kdebug demo`: a local emulated cluster with pods that have no shell, to try kdebug (or kubectl) on.

The demo lives in `kdebug_emulator`, outside the product: this command loads it only when it runs, and
says how to install it when the `demo` extra is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import typer

from kdebug.cli import options as common
from kdebug.errors import NotSupportedError, UsageError

DEMO_HELP = """Start a local demo cluster (an API emulator on 127.0.0.1) and debug a shell-less pod in it.

The cluster has namespace demo with pod web (a scratch image), pod api (distroless, non-root) and
deployment shop (2 distroless pods). Without --write-kubeconfig, kdebug attaches to pod web at once
and stops the cluster when you leave the shell.
"""

DEMO_EPILOG = """Examples:

  kdebug demo

  kdebug demo --write-kubeconfig /tmp/demo.kubeconfig &

  export KUBECONFIG=/tmp/demo.kubeconfig; kubectl get pods; kdebug attach api
"""

DEMO_EXTRA_HINT = "install the demo extra: pip install 'kdebug[demo]' (or -e '.[demo]' in a checkout)"


def load_launcher() -> ModuleType:
    """Import the demo's launcher, or explain which extra provides it."""
    try:
        return importlib.import_module("kdebug_emulator.launcher")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in DEMO_EXTRA_MODULES:
            raise  # a broken kdebug_emulator is a bug to see, not a missing extra
        raise NotSupportedError(
            f"kdebug demo needs {exc.name!r}, which is not installed", hint=DEMO_EXTRA_HINT
        ) from None


RUNTIMES = ("auto", "podman", "process")
DEMO_EXTRA_MODULES = ("aiohttp", "cryptography")  # what the `demo` extra installs


@dataclass
class DemoOptions:
    write_kubeconfig: Path | None = None
    port: int = 0
    runtime: str = "auto"

    def complete(self) -> None:
        pass

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535, not {self.port}")
        if self.runtime not in RUNTIMES:
            raise UsageError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {self.runtime!r}")


def run_demo(options: DemoOptions) -> int:
    return load_launcher().run_demo(options.runtime, options.port, options.write_kubeconfig)


def register(app: typer.Typer, execute: Callable[[DemoOptions], int] | None = None) -> None:
    """Add `demo` to `app`; `execute` runs the prepared options (tests pass one that records them)."""
    execute = execute or run_demo

    @app.command("demo", help=DEMO_HELP, epilog=DEMO_EPILOG)
    def demo(
        write_kubeconfig: Path | None = typer.Option(  # noqa: B008
            None,
            "--write-kubeconfig",
            metavar="PATH",
            help="Write a kubeconfig for the demo cluster to PATH, print `export KUBECONFIG=PATH`, and serve "
            "until Ctrl-C.",
        ),
        port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (default: any free port)."),
        runtime: str = typer.Option(
            "auto",
            "--runtime",
            help="Where the pods run: podman (real containers), process (local processes), or auto "
            "(podman where it is installed and usable).",
        ),
    ) -> None:
        options = DemoOptions(write_kubeconfig=write_kubeconfig, port=port, runtime=runtime)
        common.exit_with(execute(common.prepared(options)))
