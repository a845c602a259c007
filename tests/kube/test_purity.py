"""The pure kube modules (and the duration grammar) load no adapter: the dependency rule in STYLE.md."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = [
    "kdebug.kube.api",
    "kdebug.kube.paths",
    "kdebug.kube.targets",
    "kdebug.kube.channels",
    "kdebug.durations",
]
FORBIDDEN = ["kubernetes", "typer", "rich", "websocket", "http.client", "kdebug.kube.client"]


def test_pure_kube_modules_import_no_adapters() -> None:
    code = (
        f"import importlib, json, sys\nfor m in {PURE!r}: importlib.import_module(m)\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
