"""JSON-lines sinks: every event appended to the store is also written as one line for log shippers.

Each line is the event's hashed fields (`v, seq, ts, kind, session, data, prev`) plus its `hash`,
so the last line shipped is the chain head: an anchor kept outside the store.

Config (`sessions.sinks`): a list of `{type: file, path: PATH}`, `{type: stdout}` or `{type: stderr}`
(the strings `stdout`, `stderr` or a path are accepted as shorthands).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from kdebug.errors import UsageError
from kdebug.sessions.chain import canonical_json
from kdebug.sessions.files import FILE_MODE, make_private_dir, warn_loose


class Sink(Protocol):
    def emit(self, line: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """Appends with O_APPEND and one write per line, so concurrent kdebug processes never interleave lines."""

    def __init__(self, path: Path):
        self.path = path
        try:
            if not path.parent.exists():
                make_private_dir(path.parent)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            mode = stat.S_IMODE(os.fstat(self._fd).st_mode)
        except OSError as exc:
            raise UsageError(f"sessions.sinks: cannot open {path}: {exc.strerror}") from None
        if mode & ~FILE_MODE:
            # Not tightened: a sink file is often read by a log shipper running as another user.
            warn_loose(path, mode, "and every session event is written to it")

    def emit(self, line: Mapping[str, Any]) -> None:
        os.write(self._fd, (canonical_json(line) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class StreamSink:
    def __init__(self, stream: IO[str]):
        self._stream = stream

    def emit(self, line: Mapping[str, Any]) -> None:
        self._stream.write(canonical_json(line) + "\n")
        self._stream.flush()

    def close(self) -> None:
        pass


def _normalise(spec: Any) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"type": spec} if spec in ("stdout", "stderr") else {"type": "file", "path": spec}
    if isinstance(spec, Mapping):
        return dict(spec)
    raise UsageError(
        f"sessions.sinks: each sink must be a mapping like {{type: file, path: PATH}}, got {spec!r}"
    )


def open_sinks(
    specs: Any, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> list[FileSink | StreamSink]:
    """Open the configured sinks; a bad entry is a UsageError naming it."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        specs = [specs]
    sinks: list[FileSink | StreamSink] = []
    for raw in specs:
        spec = _normalise(raw)
        kind = spec.get("type")
        if kind == "file":
            if not spec.get("path"):
                raise UsageError("sessions.sinks: a file sink needs a path")
            sinks.append(FileSink(Path(os.path.expandvars(str(spec["path"]))).expanduser()))
        elif kind == "stdout":
            sinks.append(StreamSink(stdout or sys.stdout))
        elif kind == "stderr":
            sinks.append(StreamSink(stderr or sys.stderr))
        else:
            raise UsageError(f"sessions.sinks: unknown sink type {kind!r} (use file, stdout or stderr)")
    return sinks
