"""The tree stays lint-clean and formatted: CI runs ruff through the suite, so one test command checks all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["check", "."], id="ruff check"),
        pytest.param(["format", "--check", "."], id="ruff format"),
    ],
)
def test_ruff_is_clean(args: list[str]) -> None:
    result = subprocess.run(
        [str(RUFF), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
