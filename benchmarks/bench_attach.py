"""Time `kdebug attach POD -- true` next to `kubectl debug POD ... -i -- true` against one emulator.

Usage: .venv/bin/python benchmarks/bench_attach.py [RUNS] [KUBECTL] [RUNTIME]

RUNTIME is the emulator's: `process` (default; containers start in about 50 ms, so fixed client
costs dominate) or `podman` (real containers, whose start dominates as on a real cluster).

Both tools run as subprocesses, interleaved so they share the machine's noise, against the same
emulator (TLS, admin token). Each run adds one ephemeral container to pod `web`, waits for it with a
watch and streams its output, so both do the same server round trips. kubectl runs non-tty with
`-i` (`-it` needs a terminal; `--attach=false` would skip the wait). The KUBECTL default is Debian's
v1.32.4: v1.37 waits for a watch-list bookmark the emulator does not send.

Also prints the fixed client-side costs that explain the difference: interpreter start, imports.

kdebug is byte-compiled first, as a regular install is (see demo_cluster.py).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
KDEBUG = str(Path(PYTHON).with_name("kdebug"))


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds the client itself used: user + system from its own rusage).

    wait4 on the one child: the emulator runs in this process, and the rusage of all children would
    also count the container processes it reaps meanwhile.
    """
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            said = errors.read().decode()[-500:]
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {said}")
    return elapsed, usage.ru_utime + usage.ru_stime


def import_cost(statement: str) -> float:
    """Median wall time of `python -c STATEMENT` minus `python -c pass`."""

    def run(code: str) -> float:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([PYTHON, "-c", code], check=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    return run(statement) - run("pass")


def main() -> None:
    from demo_cluster import arguments, demo_cluster

    runs, kubectl, runtime = arguments(sys.argv, default_runs=10)
    with demo_cluster(runtime) as (emu, env):
        commands = {
            "kdebug": [KDEBUG, "attach", "web", "--", "true"],
            "kubectl": [
                kubectl,
                "debug",
                "web",
                "--image=busybox:1.36.1",
                "--target=app",
                "-i",
                "--",
                "true",
            ],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():  # warm-up: page cache, .pyc files, image pulls
            timed(command, env)
        requests: dict[str, list[int]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, command in commands.items():
                before = len(emu.requests)
                wall, used = timed(command, env)
                samples[name].append(wall)
                cpu[name].append(used)
                requests[name].append(len(emu.requests) - before)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"runs: {runs} each, kubectl: {kubectl}, emulator runtime: {runtime}")
    for name, counts in requests.items():
        print(f"{name:8s} API requests per run (median): {statistics.median(counts):.0f}")
    for name, value in medians.items():
        low, high = min(samples[name]) * 1000, max(samples[name]) * 1000
        print(f"{name:8s} median {value * 1000:7.1f} ms  (min {low:.1f} ms, max {high:.1f} ms)")
    print(f"ratio kdebug/kubectl: {medians['kdebug'] / medians['kubectl']:.2f}")
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, value in cpu_medians.items():
        print(f"{name:8s} client CPU (user+system) median {value * 1000:6.1f} ms")
    print(f"CPU ratio kdebug/kubectl: {cpu_medians['kdebug'] / cpu_medians['kubectl']:.2f}")
    print("fixed client-side costs in kdebug (median of 5, minus `python -c pass`):")
    for label, statement in (
        ("python -c pass (absolute)", "pass"),
        ("import kdebug.cli.main (typer, click)", "import kdebug.cli.main"),
        (
            "import kdebug.cli.main + the attach path (http.client, yaml, sqlite3...)",
            "import kdebug.cli.main, kdebug.debug.session, kdebug.kube.client, kdebug.kube.httppool,"
            " kdebug.sessions.recorder, kdebug.images.inspection, kdebug.security.decision, yaml",
        ),
        ("import websocket-client", "import websocket"),
        ("(not imported for static kubeconfigs) kubernetes", "import kubernetes.client, kubernetes.config"),
    ):
        cost = import_cost(statement) if statement != "pass" else import_cost("pass") + _python_start()
        print(f"  {label:62s} {cost * 1000:7.1f} ms")


def _python_start() -> float:
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", "pass"], check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
