"""PURE: parse durations like `90s`, `2m`, `1h30m`, `1.5s` (a bare number means seconds)."""

from __future__ import annotations

import re

from kdebug.errors import UsageError

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str, *, option: str = "duration") -> float:
    """Return the duration in seconds; a UsageError names the option and shows valid forms."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
        return float(cleaned)
    position = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not cleaned or position != len(cleaned):
        raise UsageError(f"{option}: invalid duration {text!r} (use forms like 90s, 2m, 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest readable form: 2m, 90s -> 1m30s, 3600 -> 1h."""
    if seconds < 1:
        return f"{seconds:g}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
