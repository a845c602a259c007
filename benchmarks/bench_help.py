"""Wall time of `kdebug --help` and `kdebug attach --help` next to `python -c pass`.

Usage: .venv/bin/python benchmarks/bench_help.py [RUNS]

Uses hyperfine when it is installed (median of RUNS after warm-up), else times the runs itself.
Also proves that neither help screen imports the `kubernetes` package.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
KDEBUG = str(Path(PYTHON).with_name("kdebug"))
COMMANDS = {
    "python -c pass": [PYTHON, "-c", "pass"],
    "kdebug --help": [KDEBUG, "--help"],
    "kdebug attach --help": [KDEBUG, "attach", "--help"],
}
IMPORT_PROBE = (
    "import sys\n"
    "from kdebug.cli.main import main\n"
    "main({argv!r})\n"
    "print('kubernetes' in sys.modules, 'websocket' in sys.modules, file=sys.stderr)\n"
)


def median_with_hyperfine(command: list[str], runs: int) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                "hyperfine",
                "--warmup",
                "2",
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
        )
        return float(json.loads(Path(out.name).read_text())["results"][0]["median"])


def median_by_hand(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs + 2):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[2:])


def imports_kubernetes(argv: list[str]) -> tuple[bool, bool]:
    result = subprocess.run(
        [PYTHON, "-c", IMPORT_PROBE.format(argv=argv)], capture_output=True, text=True, check=True
    )
    kube, ws = result.stderr.strip().splitlines()[-1].split()
    return kube == "True", ws == "True"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    measure = median_with_hyperfine if shutil.which("hyperfine") else median_by_hand
    print(f"tool: {'hyperfine' if measure is median_with_hyperfine else 'perf_counter'}, runs: {runs}")
    baseline = None
    for label, command in COMMANDS.items():
        seconds = measure(command, runs)
        baseline = baseline or seconds
        extra = (seconds - baseline) * 1000
        print(f"{label:24s} median {seconds * 1000:7.1f} ms  (+{extra:6.1f} ms over python)")
    for argv in (["--help"], ["attach", "--help"]):
        kube, ws = imports_kubernetes(argv)
        print(f"kdebug {' '.join(argv):14s} imports kubernetes: {kube}, websocket: {ws}")


if __name__ == "__main__":
    main()
