"""Fan-out of `kdebug run -l app=bench --all --parallel 20 -- true` over 200 pods in the emulator.

Usage: .venv/bin/python benchmarks/bench_run_fanout.py [PODS] [PARALLEL]

Runs the real `kdebug` console script twice against one emulator (TLS, admin token, process
runtime: every pod and every toolbox is a real local process):
  1. first run: each pod gets its toolbox ephemeral container (patch + list/watch until running + exec);
  2. second run: every toolbox is reused (exec only): it must add no ephemeral container.
Prints, per run: total wall time, time per pod, kdebug's peak memory (max RSS of the process), API
requests per pod by kind (from the emulator's request log), and ephemeral containers added.
`--max-pods` is raised to the pod count (its default safety cap is 50).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KDEBUG = str(Path(sys.executable).with_name("kdebug"))
SCRATCH_IMAGE = "registry.kdebug.test/demo/web:1.0"


def bench_pod(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"bench-{index:03d}", "namespace": "default", "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "app", "image": SCRATCH_IMAGE}]},
    }


def all_running(emu: Any, count: int) -> bool:
    pods = [p for p in emu.list("pods", "default") if p["metadata"].get("labels", {}).get("app") == "bench"]
    return len(pods) == count and all(
        "running" in (s.get("state") or {})
        for p in pods
        for s in (p.get("status", {}).get("containerStatuses") or [{}])
    )


def ephemeral_count(emu: Any) -> int:
    return sum(len(p.get("spec", {}).get("ephemeralContainers") or []) for p in emu.list("pods", "default"))


def request_kind(entry: dict[str, Any]) -> str:
    path = entry["path"]
    if path.endswith("/exec"):
        return "exec"
    if path.endswith("/ephemeralcontainers"):
        return "patch ephemeralcontainers"
    if "watch=true" in entry.get("query", ""):
        return "watch pods"
    if path.endswith("/pods"):
        return "list pods"
    return f"{entry['method']} {path.split('/')[-2] if path.count('/') > 2 else path}"


def run_once(env: dict[str, str], pods: int, parallel: int) -> tuple[float, Any, list[dict[str, Any]], str]:
    """(wall seconds, the process's rusage, the JSON results, stderr) of one `kdebug run`."""
    command = [
        KDEBUG,
        "run",
        "-l",
        "app=bench",
        "--all",
        "--max-pods",
        str(pods),
        "--parallel",
        str(parallel),
        "-o",
        "json",
        "--",
        "true",
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"kdebug run failed ({proc.returncode}): {stderr[-800:]}")
    return elapsed, usage, json.loads(stdout), stderr


def main() -> None:
    import logging

    from kdebug_emulator import Emulator

    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    pods = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    parallel = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        for index in range(pods):
            emu.apply(bench_pod(index))
        emu.wait_for(lambda: all_running(emu, pods), timeout=180)
        kubeconfig = emu.write_kubeconfig(Path(tmp) / "kubeconfig")
        config = Path(tmp) / "config.yaml"
        config.write_text("sessions: {}\n")
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KDEBUG_CONFIG": str(config),
            "XDG_DATA_HOME": str(Path(tmp) / "data"),
            "XDG_CACHE_HOME": str(Path(tmp) / "cache"),
        }
        print(f"{pods} pods (scratch image, process runtime), --parallel {parallel}, `-- true`, -o json")
        for label in ("first run (adds toolboxes)", "second run (reuses them)"):
            before_requests = len(emu.requests)
            before_containers = ephemeral_count(emu)
            elapsed, usage, results, _ = run_once(env, pods, parallel)
            entries = emu.requests[before_requests:]
            added = ephemeral_count(emu) - before_containers
            kinds = collections.Counter(request_kind(e) for e in entries)
            ok = sum(1 for r in results if r["exit_code"] == 0 and r["error"] is None)
            durations = sorted(r["duration_s"] for r in results)
            print(f"\n{label}")
            print(f"  pods ok:                 {ok}/{len(results)}")
            print(f"  wall time:               {elapsed:.2f} s ({elapsed / pods * 1000:.1f} ms per pod)")
            print(
                f"  per-pod duration:        median {durations[len(durations) // 2]:.3f} s, "
                f"max {durations[-1]:.3f} s"
            )
            print(f"  peak memory (max RSS):   {usage.ru_maxrss / 1024:.1f} MiB")
            print(
                f"  kdebug CPU time:         {usage.ru_utime + usage.ru_stime:.2f} s "
                f"(user {usage.ru_utime:.2f}, system {usage.ru_stime:.2f})"
            )
            print(f"  API requests:            {len(entries)} ({len(entries) / pods:.2f} per pod)")
            for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
                print(f"    {kind:<28} {count:>5} ({count / pods:.2f} per pod)")
            print(f"  ephemeral containers added: {added}")


if __name__ == "__main__":
    main()
