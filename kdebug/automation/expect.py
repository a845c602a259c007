"""Runbook `expect` regexes searched with a time bound: in a child Python process that is killed when
the bound passes, because Python's `re` cannot be interrupted and a pattern such as `^(a+)+$`
backtracks for hours on a long line that does not match.

A child costs a few tens of milliseconds per step with an `expect`; a safe engine (RE2) would be
cheaper, but it is not in kdebug's dependencies and lacks backreferences and lookarounds, which
existing runbooks may use.
"""

from __future__ import annotations

import json
import subprocess
import sys

from kdebug.errors import UsageError

EXPECT_TIMEOUT_S = 5.0  # generous on a loaded machine: a sane regex on 256 KiB takes milliseconds
# -I -S: no user site, no PYTHON* variables, no site imports: only `re` and `json` are needed
_CHILD = (
    "import json, re, sys\n"
    "pattern, text = json.load(sys.stdin)\n"
    "sys.exit(0 if re.search(pattern, text, re.MULTILINE) else 1)\n"
)


def search_bounded(pattern: str, text: str, timeout_s: float = EXPECT_TIMEOUT_S) -> bool:
    """Whether `pattern` matches somewhere in `text`; UsageError when it takes longer than timeout_s."""
    body = json.dumps([pattern, text]).encode("utf-8", "surrogatepass")
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD],
            input=body,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed and reaped the child
        raise UsageError(
            f"took longer than {timeout_s:g}s on the output (nested repetition such as (a+)+ backtracks)"
        ) from None
    if done.returncode not in (0, 1):
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"could not be searched: {last[:200]}")
    return done.returncode == 0
