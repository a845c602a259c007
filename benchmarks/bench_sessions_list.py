"""`kdebug sessions list --pod X` and `--since 1h` over a store of 1,000,000 session records.

Builds the store once (1,000,000 sessions = 2,000,000 chained events: start + end, spread over 90
days, 50 namespaces, 5,000 pods, 300 users) through the real store API, then times the real CLI as a
subprocess (interpreter start included): median of --runs runs. Prints wall times and the store size.

    .venv/bin/python benchmarks/bench_sessions_list.py [--records 1000000] [--dir /tmp/kdebug-bench-list]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kdebug.sessions.schema import KIND_END, KIND_START, SCHEMA_VERSION, format_timestamp
from kdebug.sessions.store import SessionStore

TARGET_MS = 300
BATCH = 20_000


def session_events(index: int, start: datetime, rng: random.Random) -> list[tuple]:
    session = f"{start:%Y%m%d-%H%M%S}-{index:06d}"[-22:]
    pod = f"web-{rng.randrange(5000):04d}"
    started = {
        "session_id": session,
        "schema": SCHEMA_VERSION,
        "status": "running",
        "namespace": f"ns-{rng.randrange(50):02d}",
        "pod": pod,
        "pod_uid": f"{index:08x}-0000-4000-8000-000000000000",
        "node": f"node-{rng.randrange(40)}",
        "container": "app",
        "target_image": "gcr.io/distroless/static-debian12:nonroot",
        "debug_image": "docker.io/library/busybox:1.36.1",
        "debug_image_reason": "distroless static nonroot: busybox as uid 65532",
        "profile": "general",
        "kube_user": f"user-{rng.randrange(300)}",
        "kube_groups": ["system:authenticated"],
        "os_user": "oncall",
        "hostname": "laptop",
        "pid": 4242,
        "reason": f"INC-{rng.randrange(100000)}",
        "recorded": True,
        "record_input": False,
        "transcript": f"{session}.cast",
        "command": ["sh"],
    }
    end_time = start + timedelta(seconds=rng.randrange(10, 3600))
    ended = {
        "status": rng.choice(["ok", "ok", "ok", "failed", "interrupted"]),
        "exit_code": 0,
        "error": None,
        "duration_seconds": (end_time - start).total_seconds(),
        "transcript": f"{session}.cast",
        "transcript_size": rng.randrange(1000, 100000),
        "transcript_sha256": f"{index:064x}",
        "transcript_truncated": False,
        "transcript_dropped_bytes": 0,
    }
    return [
        (KIND_START, session, started, format_timestamp(start)),
        (KIND_END, session, ended, format_timestamp(end_time)),
    ]


def build_store(db: Path, records: int) -> float:
    began = time.perf_counter()
    rng = random.Random(7)
    now = datetime.now(UTC)
    span = timedelta(days=90).total_seconds()
    with SessionStore(db, create=True) as store:
        store._conn.execute("PRAGMA synchronous=NORMAL")  # building only; recording uses FULL
        # Sessions in start order, so the chain's order matches time like a real store.
        offsets = sorted(rng.random() * span for _ in range(records))
        for first in range(0, records, BATCH):
            items = []
            for index in range(first, min(first + BATCH, records)):
                start = now - timedelta(seconds=span - offsets[index])
                items.extend(session_events(index, start, rng))
            store.append_many(items)
            print(f"  built {min(first + BATCH, records):,} records", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return time.perf_counter() - began


def time_cli(args: list[str], env: dict[str, str], runs: int) -> tuple[float, int]:
    kdebug = [str(Path(sys.executable).with_name("kdebug"))]
    times = []
    lines = 0
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(kdebug + args, env=env, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - began)
        lines = len(done.stdout.splitlines())
    return statistics.median(times) * 1000, lines


def store_size(db: Path) -> int:
    return sum(path.stat().st_size for path in db.parent.glob("sessions.db*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/kdebug-bench-list"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--verify", action="store_true", help="also time the hash-chain walk of `verify`")
    options = parser.parse_args()
    db = options.dir / "data" / "kdebug" / "sessions.db"
    marker = options.dir / f"built-{options.records}"
    if not marker.exists():
        for stale in db.parent.glob("sessions.db*"):
            stale.unlink()
        seconds = build_store(db, options.records)
        marker.write_text(f"{seconds:.1f}\n")
        print(f"built {options.records:,} records in {seconds:.1f} s")
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(options.dir / "data"),
        "KDEBUG_CONFIG": str(options.dir / "none.yaml"),
    }
    (options.dir / "none.yaml").write_text("{}\n")
    with SessionStore(db, create=False) as store:
        events = store.count_events()
    print(f"store: {options.records:,} records, {events:,} events, {store_size(db) / 1e6:.0f} MB")
    print(f"target: under {TARGET_MS} ms wall time per command (interpreter start included)")
    baseline, _ = time_cli(["--help"], env, options.runs)
    print(f"  kdebug --help (startup baseline)          {baseline:7.1f} ms")
    for label, args in (
        ("sessions list --pod web-0042", ["sessions", "list", "--pod", "web-0042"]),
        ("sessions list --since 1h", ["sessions", "list", "--since", "1h"]),
        (
            "sessions list --since 1h --limit 0 -o json",
            ["sessions", "list", "--since", "1h", "--limit", "0", "-o", "json"],
        ),
        ("sessions list (newest 50)", ["sessions", "list"]),
    ):
        median, lines = time_cli(args, env, options.runs)
        verdict = "ok" if median < TARGET_MS else "SLOW"
        print(f"  {label:<44}{median:7.1f} ms  ({lines} lines)  {verdict}")
    if options.verify:
        time_chain_walk(db)
    return 0


def time_chain_walk(db: Path) -> None:
    """The chain part of `sessions verify` (the synthetic store has no transcript files to hash)."""
    import resource

    from kdebug.sessions.chain import verify_chain

    began = time.perf_counter()
    with SessionStore(db, create=False) as store:
        report = verify_chain(store.iter_rows())
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "ok" if report.ok else report.problem.message
    print(
        f"  verify: chain of {report.events:,} events walked in {seconds:.1f} s ({verdict});"
        f" peak RSS {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
