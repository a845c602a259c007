"""The recorder one debug session uses: start event, state changes, transcript, end event.

    rec = open_recorder(config, reason="INC-42")   # refuses (UsageError) before anything touches the cluster
    rec.started({...})                               # BEFORE the ephemeral container is created
    rec.update({"ephemeral_container": "kdebug-ab12c"})
    rec.output(b"..."); rec.resize(120, 40)
    rec.finished("ok", 0, None)

Used as a context manager it also ends the record when the body raises: KeyboardInterrupt ->
interrupted, any other exception -> failed. A process killed outright leaves no end event; readers
then derive `interrupted` (see schema.derive_status).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import string
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from kdebug import __version__
from kdebug.errors import InternalError, KdebugError, UsageError
from kdebug.sessions import schema
from kdebug.sessions.asciicast import DEFAULT_CAP, NullTranscript, TranscriptWriter
from kdebug.sessions.sinks import open_sinks
from kdebug.sessions.store import SessionStore, boot_id, db_path_from_config, local_user, process_start_time

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(value: Any, *, option: str = "sessions.transcript_cap") -> int:
    """64MiB, 10MB, 65536: a byte count; UsageError naming the option otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise UsageError(f"{option}: invalid size {value!r} (use forms like 64MiB, 10MB or a byte count)")
    size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise UsageError(f"{option}: the size must be positive")
    return size


def random_suffix(length: int) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    section = config.get("sessions") or {}
    if not isinstance(section, Mapping):
        raise UsageError("config: `sessions` must be a mapping")
    return section


def check_recording_policy(config: Mapping[str, Any], *, record: bool, reason: str | None) -> None:
    """The config's rules, checked before anything else happens (no store, no cluster)."""
    section = _section(config)
    if section.get("require_reason") and not (reason and reason.strip()):
        raise UsageError(
            "a reason is required for every session: pass --reason TEXT (a ticket or incident id)",
            hint="the config sets sessions.require_reason: true",
        )
    if not record and not section.get("allow_no_record"):
        raise UsageError(
            "recording cannot be turned off here: --no-record needs sessions.allow_no_record: true"
            " in the config"
        )


def open_recorder(
    config: Mapping[str, Any],
    *,
    record: bool = True,
    reason: str | None = None,
    record_input: bool = False,
    wall_clock: Callable[[], datetime] = _utc_now,
    clock: Callable[[], float] = time.monotonic,
    suffix: Callable[[int], str] = random_suffix,
    stdout: IO[str] | None = None,
    flush_interval: float = 0.5,
) -> Recorder:
    check_recording_policy(config, record=record, reason=reason)
    section = _section(config)
    cap = parse_size(section.get("transcript_cap", DEFAULT_CAP))
    sinks = open_sinks(section.get("sinks"), stdout=stdout)
    try:
        store = SessionStore(db_path_from_config(config), create=True, sinks=sinks)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    session_id = schema.new_session_id(wall_clock(), suffix)
    return Recorder(
        store,
        session_id,
        record=record,
        reason=reason,
        record_input=record_input,
        cap=cap,
        wall_clock=wall_clock,
        clock=clock,
        flush_interval=flush_interval,
    )


class Recorder:
    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        *,
        record: bool,
        reason: str | None,
        record_input: bool,
        cap: int,
        wall_clock: Callable[[], datetime],
        clock: Callable[[], float],
        flush_interval: float,
    ):
        self.session_id = session_id
        self._store = store
        self._record = record
        self._reason = reason
        self._record_input = record_input and record
        self._cap = cap
        self._wall_clock = wall_clock
        self._clock = clock
        self._flush_interval = flush_interval
        self._transcript: TranscriptWriter | NullTranscript = NullTranscript()
        self._started_at: float | None = None
        self._finished = False
        self._size = (80, 24)

    @property
    def transcript_path(self) -> Path | None:
        return self._store.transcripts_dir / self._transcript_name if self._record else None

    @property
    def _transcript_name(self) -> str:
        return f"{self.session_id}.cast"

    def _now(self) -> str:
        return schema.format_timestamp(self._wall_clock())

    def started(self, fields: Mapping[str, Any]) -> None:
        """Write the start event (status running); only then open the transcript."""
        if self._started_at is not None:
            raise RuntimeError("Recorder.started() called twice")
        caller = dict(fields)
        theirs = caller.pop("session_id", None)
        if theirs is not None and theirs != self.session_id:
            # The id in the container's env must be rec.session_id; keep a different one so the link survives.
            caller["caller_session_id"] = theirs
        data = {
            **schema.split_caller_fields(caller),
            **self._local_facts(),
            "session_id": self.session_id,
            "schema": schema.SCHEMA_VERSION,
            "status": schema.STATUS_RUNNING,
            "reason": self._reason,
            "recorded": self._record,
            "record_input": self._record_input,
        }
        if self._record:
            data["transcript"] = self._transcript_name
        self._started_at = self._clock()
        self._store.append(schema.KIND_START, self.session_id, data, self._now())
        if self._record:
            self._transcript = TranscriptWriter(
                self._store.transcripts_dir / self._transcript_name,
                width=self._size[0],
                height=self._size[1],
                env={key: os.environ[key] for key in ("TERM", "SHELL") if key in os.environ},
                title=_title(fields, self.session_id),
                timestamp=int(self._wall_clock().timestamp()),
                cap=self._cap,
                clock=self._clock,
                flush_interval=self._flush_interval,
            )

    def _local_facts(self) -> dict[str, Any]:
        pid = os.getpid()
        return {
            "os_user": local_user(),
            "hostname": socket.gethostname(),
            "pid": pid,
            "boot_id": boot_id(),
            "process_start": process_start_time(pid),
            "kdebug_version": __version__,
        }

    def update(self, fields: Mapping[str, Any]) -> None:
        if self._finished:
            return
        self._store.append(
            schema.KIND_UPDATE, self.session_id, schema.split_caller_fields(fields), self._now()
        )

    def output(self, data: bytes) -> None:
        self._transcript.output(data)

    def input(self, data: bytes) -> None:
        if self._record_input:
            self._transcript.input(data)

    def resize(self, cols: int, rows: int) -> None:
        self._size = (cols, rows)
        self._transcript.resize(cols, rows)

    def finished(self, status: str, exit_code: int | None, error: str | None) -> None:
        """Close the transcript and append the end event; later calls do nothing."""
        if self._finished:
            return
        error_kind = None
        if status not in schema.END_STATUSES:
            # A KdebugError kind (not_found, timeout, ...): the session failed; keep the kind.
            status, error_kind = schema.STATUS_FAILED, status
        if self._started_at is None:
            # Failed before started() (e.g. the target was not found): still leave a whole record.
            self.started({})
        self._finished = True
        try:
            summary = self._transcript.close()
            code = None if exit_code is None else int(exit_code)
            data: dict[str, Any] = {"status": status, "exit_code": code, "error": error}
            if error_kind:
                data["error_kind"] = error_kind
            data["duration_seconds"] = round(self._clock() - (self._started_at or 0.0), 3)
            if self._record:
                data.update(
                    transcript=self._transcript_name,
                    transcript_size=summary.size,
                    transcript_sha256=summary.sha256,
                    transcript_truncated=summary.truncated,
                    transcript_dropped_bytes=summary.dropped_bytes,
                )
            self._store.append(schema.KIND_END, self.session_id, data, self._now())
        finally:
            self._store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.finished(schema.STATUS_OK, None, None)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finished(schema.STATUS_INTERRUPTED, 130, "interrupted")
        elif isinstance(exc, KdebugError):
            self.finished(schema.STATUS_FAILED, exc.exit_code, exc.message or exc_type.__name__)
        else:  # a bug: its type and a capped message
            internal = InternalError.wrapping(exc if exc is not None else exc_type())
            self.finished(schema.STATUS_FAILED, internal.exit_code, internal.message)


def _title(fields: Mapping[str, Any], session_id: str) -> str:
    where = "/".join(str(fields[key]) for key in ("namespace", "pod") if fields.get(key))
    return f"kdebug {where} ({session_id})" if where else f"kdebug {session_id}"
