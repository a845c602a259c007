"""The pure debug modules load no adapter, no kdebug I/O module and no randomness (STYLE.md)."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = ["kdebug.debug.spec", "kdebug.debug.request", "kdebug.debug.reuse", "kdebug.debug.copy_spec"]
FORBIDDEN = [
    "kubernetes",
    "typer",
    "rich",
    "urllib.request",
    "http.client",
    "secrets",
    "random",
    "kdebug.kube.client",
    "kdebug.kube.watch",
]


def test_pure_debug_modules_import_no_adapters() -> None:
    code = (
        f"import importlib, json, sys\nfor m in {PURE!r}: importlib.import_module(m)\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
