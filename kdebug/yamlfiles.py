"""YAML parsing for kdebug's own files (kubeconfigs, the config file, the catalog).

PyYAML's C parser (libyaml, in its wheels) is several times faster than the pure Python one; both
build the same plain data with the same safe constructor and raise yaml.YAMLError with line marks.
A kubeconfig is read twice per command (cluster settings, then the API client), so a file's parse
is kept for the rest of the process, keyed by its mtime and size.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from kdebug.lazy import lazy_module

yaml = lazy_module("yaml")  # loaded by the first file parsed: `--help` and usage errors parse none

_parsed: dict[tuple[str, int, int], Any] = {}


def safe_load(text: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def load_file(path: Path) -> Any:
    """The parsed document in `path`; raises OSError, UnicodeDecodeError or yaml.YAMLError."""
    stat = os.stat(path)
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _parsed:
        _parsed[key] = safe_load(Path(path).read_text(encoding="utf-8"))
    return copy.deepcopy(_parsed[key])  # callers may change what they get
