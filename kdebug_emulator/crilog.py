"""CRI container log files (podman's k8s-file driver writes the same format), read as the kubelet reads them.

One record per line: `TIMESTAMP STREAM TAG MESSAGE`, e.g.
    2026-11-27T09:24:50.057083467+00:00 stdout F one
    2026-11-27T09:24:50.721300256+00:00 stdout P first 8 KiB of a long line
STREAM is stdout or stderr; the TAG's first `:`-separated field is F (a full line: its newline was eaten
by the record's own) or P (partial: the message continues in the next record, no newline in between).

The kubelet (pkg/kubelet/kuberuntime/logs) serves both streams as one body: each record's MESSAGE, plus
"\\n" for F; with timestamps=true every record, partial ones too, is prefixed by its timestamp in the
fixed-width RFC3339Nano form (`2006-01-02T15:04:05.000000000Z07:00`) and a space; tailLines=N starts at
the N-th last complete line of the file (a record, so a P record counts as one). Lines it cannot parse
are skipped. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

STREAMS = (b"stdout", b"stderr")
PARTIAL_TAG = b"P"
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class LogRecord:
    timestamp: str  # as the runtime wrote it
    stream: str  # "stdout" or "stderr"
    partial: bool
    message: bytes  # without the record's newline


def parse_record(line: bytes) -> LogRecord | None:
    """One line of the file (without its newline) -> a record, or None when it is not a CRI record."""
    parts = line.split(b" ", 3)
    if len(parts) < 4:  # the kubelet needs the space after the tag, even for an empty message
        return None
    stamp, stream, tag, message = parts
    if stream not in STREAMS or _TIMESTAMP.fullmatch(stamp.decode("ascii", "replace")) is None:
        return None
    partial = tag.split(b":")[0] == PARTIAL_TAG
    return LogRecord(stamp.decode("ascii"), stream.decode("ascii"), partial, message)


def split_records(data: bytes, *, final: bool = False) -> tuple[list[LogRecord], bytes]:
    """Records from the complete lines of `data`, and the incomplete last line (kept for the next read).

    `final`: nothing more will come, so a trailing line without its newline is a record too."""
    *lines, rest = data.split(b"\n")
    if final and rest:
        lines, rest = [*lines, rest], b""
    records = [record for line in lines if (record := parse_record(line)) is not None]
    return records, rest


def kubelet_timestamp(stamp: str) -> str:
    """The record's time as the kubelet prints it: nine fraction digits, `Z` for a zero offset."""
    found = _TIMESTAMP.fullmatch(stamp)
    if found is None:
        return stamp
    seconds, fraction, offset = found.groups()
    fraction = (fraction or "").ljust(9, "0")
    if offset in ("Z", "+00:00", "-00:00"):
        return f"{seconds}.{fraction}Z"
    # Go keeps the written offset; only a zero offset prints as Z
    return f"{seconds}.{fraction}{offset}"


def render_record(record: LogRecord, *, timestamps: bool) -> bytes:
    body = record.message if record.partial else record.message + b"\n"
    return (kubelet_timestamp(record.timestamp).encode() + b" " + body) if timestamps else body


def render(records: Iterable[LogRecord], *, timestamps: bool) -> bytes:
    return b"".join(render_record(record, timestamps=timestamps) for record in records)


def last_records(records: Sequence[LogRecord], tail_lines: int | None) -> list[LogRecord]:
    """The last `tail_lines` records (all of them for None)."""
    if tail_lines is None:
        return list(records)
    return list(records[max(0, len(records) - tail_lines) :]) if tail_lines > 0 else []


def render_log(data: bytes, *, tail_lines: int | None, timestamps: bool) -> bytes:
    """A whole log file at once (no follow): like the kubelet, a trailing line without its newline is
    shown too, unless tailLines limits the output to complete lines."""
    records, rest = split_records(data)
    shown = last_records(records, tail_lines)
    if tail_lines is None:  # printed as read: no newline of its own
        shown += [replace(record, partial=True) for record in split_records(rest, final=True)[0]]
    return render(shown, timestamps=timestamps)
