"""Loads the user's config file; each feature reads its own section from the returned dict.

Location: $KDEBUG_CONFIG, else $XDG_CONFIG_HOME/kdebug/config.yaml (~/.config/kdebug/config.yaml).
A missing file is an empty config; an unreadable or malformed one is a UsageError naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kdebug.errors import UsageError


def config_path() -> Path:
    explicit = os.environ.get("KDEBUG_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kdebug" / "config.yaml"


def data_dir() -> Path:
    """Where kdebug keeps its data (session store, caches): $XDG_DATA_HOME/kdebug."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kdebug"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kdebug"


def load_config(path: Path | None = None) -> dict[str, Any]:
    import yaml

    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if os.environ.get("KDEBUG_CONFIG") and path == config_path():
            raise UsageError(f"config file {path} (from KDEBUG_CONFIG) does not exist") from None
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"config file {path}{where}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path}: expected a mapping at the top level")
    return data
