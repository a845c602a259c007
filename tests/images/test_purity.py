"""The pure modules load no adapter or UI library (the dependency rule in STYLE.md)."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = [
    "kdebug.images.reference",
    "kdebug.images.classify",
    "kdebug.images.catalog",
    "kdebug.images.selection",
    "kdebug.images.layers",
]
FORBIDDEN = ["kubernetes", "typer", "rich", "aiohttp", "urllib.request", "http.client"]


def test_pure_modules_import_no_adapters() -> None:
    code = (
        f"import importlib, json, sys\nfor m in {PURE!r}: importlib.import_module(m)\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
