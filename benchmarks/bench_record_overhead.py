"""What recording costs a large output: 50 MB pushed through the recorder, recorded vs not.

Drives the real Recorder (open_recorder, output(), finished()) with the chunk sizes a terminal
stream delivers, each chunk also written to /dev/null the way attach writes it to the terminal:
  - recorded:     Recorder with the asciicast transcript (default flush timing, fsync each second)
  - not recorded: Recorder opened with record=False (the NullTranscript), the `--no-record` path
Two payloads: text like `cat` of a log (ASCII with some UTF-8), and random bytes (worst case: every
invalid byte becomes a 6-character JSON escape). Prints MB/s, the ratio and the transcript size.

The attached session: `kdebug attach web -- cat FILE` (the text payload) on a real pseudo-terminal
against an in-process demo emulator, recorded vs `--no-record` (the config allows it). Times the
stream (first output byte to EOF on the terminal) and the whole command; prints the ratio.

    .venv/bin/python benchmarks/bench_record_overhead.py [--mb 50] [--chunk 32768] [--runs 3]
        [--mode recorder|attached|both]
"""

from __future__ import annotations

import argparse
import os
import pty
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from kdebug.sessions.recorder import open_recorder


def text_payload(size: int) -> bytes:
    rng = random.Random(1)
    words = ["GET", "/api/v1/pods", "200", "café", "naïve", "ok", "latency=12ms", "user=alice", "→", "trace"]
    lines = []
    total = 0
    while total < size:
        line = (
            f"2026-11-27T06:00:{rng.randrange(60):02d}Z " + " ".join(rng.choices(words, k=12)) + "\n"
        ).encode()
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def binary_payload(size: int) -> bytes:
    return random.Random(2).randbytes(size)


def run_once(config: dict, payload: bytes, chunk: int, record: bool) -> tuple[float, float, int]:
    """(seconds streaming the output, seconds until the record is finished, transcript bytes)."""
    sink = os.open(os.devnull, os.O_WRONLY)
    rec = open_recorder(config, record=record)
    rec.started({"namespace": "bench", "pod": "cat", "container": "app"})
    view = memoryview(payload)
    began = time.perf_counter()
    for offset in range(0, len(payload), chunk):
        piece = bytes(view[offset : offset + chunk])
        os.write(sink, piece)  # the terminal
        rec.output(piece)
    streamed = time.perf_counter() - began
    rec.finished("ok", 0, None)
    total = time.perf_counter() - began
    os.close(sink)
    path = rec.transcript_path
    size = path.stat().st_size if path and path.exists() else 0
    if path and path.exists():
        path.unlink()
    return streamed, total, size


KDEBUG = str(Path(sys.executable).with_name("kdebug"))
ECHO_BYTES = 16  # the newline we type comes back (local echo, remote echo) before the payload


def attached_run(env: dict[str, str], payload_file: Path, record: bool) -> tuple[float, float, int]:
    """(stream seconds, command seconds, bytes seen) of one `kdebug attach web -- cat FILE` on a pty."""
    master, slave = pty.openpty()
    # `read` first: an attach only sees output written after it connects, so cat waits for our newline
    script = f"read -r _; cat {payload_file}"
    args = [
        KDEBUG,
        "attach",
        "web",
        "-n",
        "demo",
        *([] if record else ["--no-record"]),
        "--",
        "sh",
        "-c",
        script,
    ]
    began = time.perf_counter()
    child = subprocess.Popen(
        args, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL, env=env, close_fds=True
    )
    os.close(slave)
    os.write(master, b"\n")  # waits in the terminal until kdebug forwards it
    seen, first = 0, None
    while True:
        try:
            data = os.read(master, 1 << 20)
        except OSError:  # EIO: every holder of the terminal is gone
            break
        if not data:
            break
        if first is None and seen + len(data) > ECHO_BYTES:  # the payload, not the echoed newline
            first = time.perf_counter()
        seen += len(data)
    ended = time.perf_counter()
    child.wait()
    os.close(master)
    if child.returncode != 0:
        raise SystemExit(f"kdebug attach exited {child.returncode}")
    return ended - (first or ended), time.perf_counter() - began, seen


def attached_session(size: int, runs: int) -> None:
    from kdebug_emulator import Emulator

    with tempfile.TemporaryDirectory(prefix="kdebug-bench-attach-") as tmp:
        home = Path(tmp)
        payload_file = home / "payload.log"
        payload_file.write_bytes(text_payload(size))
        (home / "config" / "kdebug").mkdir(parents=True)
        settings = {"sessions": {"allow_no_record": True, "transcript_cap": "1GiB"}}
        (home / "config" / "kdebug" / "config.yaml").write_text(yaml.safe_dump(settings))
        env = {
            **os.environ,
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "KUBECONFIG": str(home / "kubeconfig"),
            "TERM": "xterm",
        }
        env.pop("KDEBUG_CONFIG", None)
        with Emulator(demo=True, workdir=home / "emulator") as emu:
            emu.write_kubeconfig(home / "kubeconfig", namespace="demo")
            attached_run(env, payload_file, True)  # warm-up: caches, page cache
            plain, recorded = [], []
            for _ in range(runs):  # interleaved, so drift in machine load hits both alike
                plain.append(attached_run(env, payload_file, False))
                recorded.append(attached_run(env, payload_file, True))
        stream_plain = statistics.median(r[0] for r in plain)
        stream_rec = statistics.median(r[0] for r in recorded)
        total_plain = statistics.median(r[1] for r in plain)
        total_rec = statistics.median(r[1] for r in recorded)
        print(f"{size / 1e6:.0f} MB through `cat` in an attached session (pty, emulator), median of {runs}")
        print(f"  terminal received {recorded[0][2] / 1e6:.1f} MB (the pty turns \\n into \\r\\n)")
        print(
            f"  stream:  --no-record {stream_plain:6.2f} s, recorded {stream_rec:6.2f} s,"
            f" ratio {stream_rec / stream_plain:.3f}"
        )
        print(
            f"  command: --no-record {total_plain:6.2f} s, recorded {total_rec:6.2f} s,"
            f" ratio {total_rec / total_plain:.3f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument(
        "--chunk", type=int, action="append", help="chunk size(s) in bytes (default 4096, 32768)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("recorder", "attached", "both"), default="both")
    options = parser.parse_args()
    size = options.mb * 1_000_000
    chunks = options.chunk or [4096, 32768]
    if options.mode in ("attached", "both"):
        attached_session(size, options.runs)
    if options.mode == "attached":
        return 0
    with tempfile.TemporaryDirectory(prefix="kdebug-bench-rec-") as tmp:
        config = {
            "sessions": {
                "path": str(Path(tmp) / "sessions.db"),
                "allow_no_record": True,
                "transcript_cap": "1GiB",  # measure writing all of it, not the cap's early stop
            }
        }
        print(f"{options.mb} MB through the recorder, median of {options.runs} runs")
        print("  stream: time the output loop takes (what the terminal feels); finish: until the end event")
        for name, payload in (("text", text_payload(size)), ("random bytes", binary_payload(size))):
            for chunk in chunks:
                plain = [run_once(config, payload, chunk, False) for _ in range(options.runs)]
                recorded = [run_once(config, payload, chunk, True) for _ in range(options.runs)]
                plain_stream = statistics.median(run[0] for run in plain)
                rec_stream = statistics.median(run[0] for run in recorded)
                rec_total = statistics.median(run[1] for run in recorded)
                print(
                    f"  {name:<13} chunk {chunk:>6} B: stream not recorded {plain_stream * 1000:6.0f} ms,"
                    f" recorded {rec_stream * 1000:6.0f} ms; recorded until finish {rec_total * 1000:6.0f} ms"
                    f" ({size / rec_total / 1e6:.0f} MB/s); transcript {recorded[0][2] / 1e6:.0f} MB"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
