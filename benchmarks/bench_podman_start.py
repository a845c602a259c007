"""Time to a running ephemeral container on podman: `kdebug attach web -- true` against the emulator on
the podman runtime, next to a plain `podman run --pid container:X ... true`, in the same run.

Usage: .venv/bin/python benchmarks/bench_podman_start.py [RUNS]

Setup (not timed): a local docker-registry with the test images, the emulator's demo cluster on the
podman runtime, one warm-up attach so the debug image is present. Then, interleaved so both share the
machine's noise:
- kdebug: the whole command (interpreter start, PATCH, watch until running, attach, exit), as a user
  would time it;
- podman: `podman run --rm --pid container:TARGET --network none BUSYBOX true` in the runtime's own
  storage, against a standalone copy of the scratch app (outside a pod: podman 4.3 accepts
  `--pid container:` there), i.e. the container runtime's own cost for the same container.
The difference of the medians is what kdebug and the emulator add.
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
KDEBUG = str(Path(PYTHON).with_name("kdebug"))
BUSYBOX = "docker.io/library/busybox:1.36.1"
WEB = "registry.kdebug.test/demo/web:1.0"


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr.decode()[-400:]}")
    return elapsed


def wait_for_demo(emu: object) -> None:
    for _ in range(600):
        pod = emu.get("pods", "demo", "web") or {}  # type: ignore[attr-defined]
        if pod.get("status", {}).get("phase") == "Running":
            return
        time.sleep(0.1)
    raise SystemExit("the demo pod did not run")


def main(runs: int) -> None:
    from kdebug_emulator import Emulator
    from kdebug_emulator.localregistry import start_registry
    from kdebug_emulator.podman_images import push_podman_images
    from kdebug_emulator.runtimes.podman import PodmanRuntime, podman_usable

    usable, reason = podman_usable()
    if not usable:
        raise SystemExit(f"podman cannot run here: {reason}")
    with start_registry() as registry:
        push_podman_images(registry.host)
        runtime = functools.partial(PodmanRuntime, registry_host=registry.host)
        with Emulator(demo=True, runtime=runtime) as emu:
            wait_for_demo(emu)
            setup = emu.api.runtime.setup
            env = {**os.environ, "KUBECONFIG": str(emu.kubeconfig)}
            kdebug = [KDEBUG, "attach", "web", "-n", "demo", "--", "true"]
            timed(kdebug, env)  # warm-up: pulls the debug image
            target = setup.run_sync("run", "-d", "--network", "none", "--name", "bench-target", WEB)
            if target.returncode != 0:
                raise SystemExit(f"podman run failed: {target.stderr[-400:]}")
            podman = setup.argv(
                "run", "--rm", "--pid", "container:bench-target", "--network", "none", BUSYBOX, "true"
            )
            podman_env = setup.env()
            timed(podman, podman_env)
            kdebug_times, podman_times = [], []
            for _ in range(runs):
                kdebug_times.append(timed(kdebug, env))
                podman_times.append(timed(podman, podman_env))
            setup.run_sync("rm", "--force", "--time", "0", "bench-target")
    k, p = statistics.median(kdebug_times), statistics.median(podman_times)
    print(f"runs: {runs}")
    print(f"kdebug attach web -- true (emulator + podman): median {k * 1000:.0f} ms")
    print(f"podman run --pid container:X ... true:          median {p * 1000:.0f} ms")
    print(f"overhead of kdebug and the emulator:            {(k - p) * 1000:.0f} ms ({k / p:.1f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
