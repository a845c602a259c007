"""PURE: the one duration grammar of every option that takes a time span (`--timeout`, `--since`, ...).

A duration is one or more `NUMBER UNIT` parts that add up, with no spaces: `90s`, `2m`, `1h30m`, `1.5s`,
`2d`, `1w2d`; units ms, s, m, h, d, w; a bare number means seconds.
A point in time (`--since`, `--until`, `--older-than`) is a duration back from now, or an ISO date
or RFC 3339 time; there a duration needs its unit: `--older-than 90` could mean 90 days to a reader
and would prune what was recorded a minute and a half ago.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from kdebug.errors import UsageError

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = r"\d+(?:\.\d+)?"
# `ms` before `m`, so 250ms is not read as 250 minutes followed by a stray `s`
_PART = re.compile(rf"({_NUMBER})(ms|w|d|h|m|s)")
_DURATION = re.compile(rf"{_NUMBER}|(?:{_PART.pattern})+")
DURATION_FORMS = "90s, 2m, 1h30m, 1.5s, 2d, 1w"


def read_duration(text: str) -> float | None:
    """The duration in seconds, or None when `text` is not one."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        return None
    if _PART.match(cleaned) is None:
        return float(cleaned)
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(cleaned))


def parse_duration(text: str, *, option: str = "duration") -> float:
    """Return the duration in seconds; a UsageError names the option and shows valid forms."""
    seconds = read_duration(text)
    if seconds is None:
        raise UsageError(f"{option}: invalid duration {text!r} (use forms like {DURATION_FORMS})")
    return seconds


def parse_instant(text: str, now: datetime, *, option: str) -> datetime:
    """A duration before `now`, or an ISO date / RFC 3339 time (UTC when it has no offset), in UTC.

    The absolute forms are tried first, so `20261127` is a date, not 20261127 seconds ago.
    """
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        seconds = read_duration(cleaned) if _PART.search(cleaned.lower()) else None
        if seconds is None:
            raise UsageError(
                f"{option}: invalid time {text!r} (use a duration like 30m, 1h30m, 90d, 2w, a date like "
                "2026-11-27 or a time like 2026-11-27T06:00:00Z)"
            ) from None
        return (now - timedelta(seconds=seconds)).astimezone(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """The shortest readable form: 2m, 90s -> 1m30s, 3600 -> 1h."""
    if seconds < 1:
        return f"{seconds:g}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
