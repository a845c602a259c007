"""The emulated demo cluster the attach benchmarks run kdebug and kubectl against."""

from __future__ import annotations

import compileall
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kdebug"


def arguments(argv: list[str], default_runs: int) -> tuple[int, str, str]:
    """RUNS, KUBECTL and RUNTIME from the command line: `[RUNS] [KUBECTL] [RUNTIME]`."""
    runs = int(argv[1]) if len(argv) > 1 else default_runs
    kubectl = argv[2] if len(argv) > 2 else "/usr/bin/kubectl"
    runtime = argv[3] if len(argv) > 3 else "process"
    return runs, kubectl, runtime


@contextmanager
def demo_cluster(runtime: str) -> Iterator[tuple[object, dict[str, str]]]:
    """(emulator, environment with KUBECONFIG) once pod demo/web runs: the cluster `kdebug demo`
    serves, with its local registry and the mirror settings its kubeconfig carries.

    kdebug's modules are byte-compiled first, as `pip install` does for a regular install: an editable
    install under PYTHONDONTWRITEBYTECODE (set on this machine) would otherwise recompile every changed
    module on every run, which no user pays.
    """
    from kdebug_emulator import Emulator
    from kdebug_emulator.launcher import DemoRegistry, runtime_factory

    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # clients closing watches are not news here
    compileall.compile_dir(str(PACKAGE), quiet=1)
    registry = DemoRegistry()
    registry.start(runnable=runtime == "podman")
    emu = Emulator(
        demo=True,
        runtime=runtime_factory(runtime, registry),
        image_mirrors=registry.image_mirrors,
        image_digests=registry.image_digests,
    )
    try:
        with emu, tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            emu.write_kubeconfig(kubeconfig, namespace="demo", extensions=registry.kubeconfig_extensions)
            emu.wait_for(lambda: "running" in str((emu.get("pods", "demo", "web") or {}).get("status")), 60)
            yield emu, {**os.environ, "KUBECONFIG": str(kubeconfig)}
    finally:
        registry.stop()
