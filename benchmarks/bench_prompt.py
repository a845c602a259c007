"""Time from `kdebug attach POD` to the debug shell's prompt, next to `kubectl debug POD -it -- sh`.

Usage: .venv/bin/python benchmarks/bench_prompt.py [RUNS] [KUBECTL] [RUNTIME]

Both run in a real pseudo-terminal (pexpect) against one emulator (`process` runtime by default,
`podman` for real containers), interleaved; each run waits for the BusyBox prompt, types `exit` and
waits for the tool to end. This is what an on-call engineer feels: start-up, lookups, the container
start, the websocket attach and the first prompt.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pexpect

KDEBUG = str(Path(sys.executable).with_name("kdebug"))
PROMPT = [r"[#$] $", r"[#$] \x1b"]  # BusyBox ash asks for the cursor position right after its prompt


def time_to_prompt(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    child = pexpect.spawn(command[0], command[1:], env=env, timeout=30, dimensions=(40, 120))
    child.expect(PROMPT)
    elapsed = time.perf_counter() - start
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    return elapsed


def main() -> None:
    from demo_cluster import arguments, demo_cluster

    runs, kubectl, runtime = arguments(sys.argv, default_runs=8)
    with demo_cluster(runtime) as (_emu, env):
        commands = {
            "kdebug": [KDEBUG, "attach", "web", "--no-reuse"],
            "kubectl": [kubectl, "debug", "web", "--image=busybox:1.36.1", "--target=app", "-it", "--", "sh"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():  # warm-up
            time_to_prompt(command, env)
        for _ in range(runs):
            for name, command in commands.items():
                samples[name].append(time_to_prompt(command, env))
    print(f"runs: {runs} each, kubectl: {kubectl}, emulator runtime: {runtime}")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in medians.items():
        low = min(samples[name]) * 1000
        print(f"{name:8s} time to prompt median {value * 1000:7.1f} ms  (min {low:.1f} ms)")
    print(f"ratio kdebug/kubectl: {medians['kdebug'] / medians['kubectl']:.2f}")


if __name__ == "__main__":
    main()
