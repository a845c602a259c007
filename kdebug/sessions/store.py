"""The session store: SQLite (WAL) holding the append-only event chain; transcripts in a directory beside it.

Appends run in `BEGIN IMMEDIATE` transactions, so several kdebug processes recording at once are
serialised by SQLite's write lock and every event gets the next seq and the previous head as `prev`.
Rows are never updated; `prune` deletes a prefix of the chain and records a checkpoint. Every
sqlite error goes through `_guard`, which turns it into a one-line StoreError with a way out.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdebug.config import data_dir
from kdebug.errors import NotFoundError, StoreError, UsageError
from kdebug.sessions import schema
from kdebug.sessions.chain import (
    GENESIS,
    ChainedEvent,
    ChainReport,
    Problem,
    StoredRow,
    TranscriptClaim,
    check_transcripts,
    make_event,
    verify_chain,
)
from kdebug.sessions.files import DIR_MODE, FILE_MODE, make_private_dir, open_private, tighten
from kdebug.sessions.schema import KIND_END, KIND_PRUNE, KIND_START

DB_FORMAT = 1
# The only transcript names kdebug writes: SESSION_ID.cast. A name read from the database is never
# used as a path unless it has this shape (a forged record could name ../../anything).
TRANSCRIPT_NAME = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-z]{6}\.cast")
_COLUMNS = ("kind", "session", "ts", "namespace", "pod", "user_name", "status")

_DDL = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    session TEXT,
    ts TEXT NOT NULL,
    namespace TEXT,
    pod TEXT,
    user_name TEXT,
    status TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_session ON events(session, kind);
CREATE INDEX IF NOT EXISTS start_ts ON events(ts) WHERE kind = 'session.start';
CREATE INDEX IF NOT EXISTS start_pod ON events(pod, ts) WHERE kind = 'session.start';
CREATE INDEX IF NOT EXISTS start_namespace ON events(namespace, ts) WHERE kind = 'session.start';
CREATE INDEX IF NOT EXISTS start_user ON events(user_name, ts) WHERE kind = 'session.start';
CREATE INDEX IF NOT EXISTS end_ts ON events(ts) WHERE kind = 'session.end';
CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, ts TEXT NOT NULL);
"""


def default_db_path() -> Path:
    return data_dir() / "sessions.db"


def db_path_from_config(config: Mapping[str, Any]) -> Path:
    """`sessions.path` is the database file; transcripts go in `transcripts/` beside it."""
    section = config.get("sessions") or {}
    if not isinstance(section, Mapping):
        raise UsageError("config: `sessions` must be a mapping")
    raw = section.get("path")
    if not raw:
        return default_db_path()
    path = Path(os.path.expandvars(str(raw))).expanduser()
    return path / "sessions.db" if path.is_dir() else path


@dataclass(frozen=True)
class SessionQuery:
    since: str | None = None  # RFC 3339 bounds on the start time
    until: str | None = None
    user: str | None = None
    namespace: str | None = None
    pod: str | None = None
    status: str | None = None
    limit: int | None = 50


@dataclass(frozen=True)
class VerifyResult:
    chain: ChainReport
    transcripts: int

    @property
    def ok(self) -> bool:
        return self.chain.ok


@dataclass(frozen=True)
class PruneResult:
    sessions: int
    events: int
    transcripts: int
    through_seq: int
    through_hash: str
    event: ChainedEvent | None


class SessionStore:
    def __init__(
        self, db_path: Path, *, create: bool = True, sinks: Sequence[Any] = (), busy_timeout: float = 30
    ):
        self.db_path = db_path
        self.transcripts_dir = db_path.parent / "transcripts"
        self._sinks = list(sinks)
        self._lock = threading.Lock()
        if not db_path.exists():
            orphans = self._orphan_transcripts()
            if orphans:
                raise StoreError(
                    f"session store {db_path} is missing but {orphans} transcript(s) exist in "
                    f"{self.transcripts_dir}",
                    hint="restore the database from a backup, or move the transcripts directory aside "
                    "to start a new store",
                )
            if not create:
                raise StoreError(
                    f"no session store at {db_path}: no session has been recorded yet",
                    hint="sessions are recorded by `kdebug attach`; set sessions.path in the config "
                    "if the store lives elsewhere",
                )
        with self._guard():
            self._make_private(create)
            # One recorder may be driven from several threads (stream reader, main); the lock serialises.
            self._conn = sqlite3.connect(
                str(db_path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._busy_timeout = busy_timeout
            self._prepare(create)

    def _make_private(self, create: bool) -> None:
        """Directories 0700, the database and its side files 0600, before SQLite opens anything.

        SQLite creates the -wal and -shm files with the database file's mode, so a private database
        file keeps them private. The database's own directory is tightened when it is kdebug's (the
        default data directory, or created here), not a directory the config merely points into.
        """
        parent = self.db_path.parent
        if create and not parent.exists():
            make_private_dir(parent)
        elif parent == default_db_path().parent:
            tighten(parent, DIR_MODE)
        if create:
            make_private_dir(self.transcripts_dir)
        elif tighten(self.transcripts_dir, DIR_MODE):
            # The directory let others in, so its transcripts may have too: tighten them once here.
            for transcript in self.transcripts_dir.glob("*.cast"):
                tighten(transcript, FILE_MODE)
        if create and not self.db_path.exists():
            os.close(open_private(self.db_path, os.O_WRONLY))
        for suffix in ("", "-wal", "-shm", "-journal"):
            tighten(self.db_path.with_name(self.db_path.name + suffix), FILE_MODE)

    def _orphan_transcripts(self) -> int:
        try:
            return sum(1 for _ in self.transcripts_dir.glob("*.cast"))
        except OSError:
            return 0

    def _prepare(self, create: bool) -> None:
        # One read transaction: a kdebug creating the store meanwhile must not look like a foreign file.
        self._conn.execute("BEGIN")
        try:
            version = self._format_version()
        finally:
            self._conn.execute("COMMIT")
        if version > DB_FORMAT:
            raise StoreError(
                f"session store {self.db_path} was written by a newer kdebug (format {version})",
                hint="upgrade kdebug to read it",
            )
        self._enable_wal()  # after the foreign-file check: WAL mode would change a foreign file
        self._conn.execute("PRAGMA synchronous=FULL")
        if version == 0:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Again under the write lock: a kdebug creating the store meanwhile also set the version.
                if self._format_version() == 0:
                    # statement by statement: executescript would commit the open transaction first
                    for statement in filter(str.strip, _DDL.split(";")):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version={DB_FORMAT}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        for suffix in ("-wal", "-shm"):
            tighten(self.db_path.with_name(self.db_path.name + suffix), FILE_MODE)

    def _format_version(self) -> int:
        """The store's format; a SQLite file kdebug did not make (no version, but tables) is refused."""
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version == 0 and self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(
                f"session store {self.db_path} is not a kdebug session store "
                "(a SQLite file with other tables)",
                hint="point sessions.path at a new file, or move this one aside",
            )
        return version

    def _enable_wal(self) -> None:
        # Switching a new database to WAL needs an exclusive lock, and SQLite answers "locked" at once
        # (without its busy handler) when another process is doing the same: retry within busy_timeout.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)  # another process holds the lock: nothing to wait on but time

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreError(
                    f"session store {self.db_path} is busy: another kdebug process holds it too long",
                    hint="try again in a moment",
                ) from None
            if "unable to open" in text or "readonly" in text or "disk I/O" in text:
                raise StoreError(
                    f"cannot open session store {self.db_path}: {text}",
                    hint="check the file's permissions and free disk space",
                ) from None
            raise self._corrupt(text) from None
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(str(exc)) from None
        except OSError as exc:
            raise StoreError(f"cannot use session store {self.db_path}: {exc.strerror or exc}") from None

    def _event(self, body: str, digest: str) -> dict[str, Any]:
        try:
            event = _parse_event(body)
        except ValueError as exc:  # JSONDecodeError included
            raise self._damaged(str(exc)) from None
        event["hash"] = digest
        return event

    def _damaged(self, why: str) -> StoreError:
        return StoreError(
            f"session store {self.db_path} holds a damaged event ({why})",
            hint="`kdebug sessions verify` names the first altered event; restore the store from a backup",
        )

    def _corrupt(self, text: str) -> StoreError:
        return StoreError(
            f"session store {self.db_path} is corrupt ({text})",
            hint="restore it from a backup, or keep it (with its transcripts) for investigation and "
            f"start a new store: mv {self.db_path} {self.db_path}.corrupt && mv {self.transcripts_dir} "
            f"{self.transcripts_dir}.corrupt",
        )

    def close(self) -> None:
        self._conn.close()
        for sink in self._sinks:
            sink.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- appending ------------------------------------------------------------------------------------
    def append(self, kind: str, session: str | None, data: Mapping[str, Any], ts: str) -> ChainedEvent:
        return self.append_many([(kind, session, data, ts)])[-1]

    def append_many(
        self, items: Iterable[tuple[str, str | None, Mapping[str, Any], str]]
    ) -> list[ChainedEvent]:
        """Append events in one transaction; sink lines are written before the commit, in seq order."""
        with self._lock, self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = self._head_locked()
                events = []
                for kind, session, data, ts in items:
                    seq += 1
                    event = make_event(seq=seq, prev=prev, ts=ts, kind=kind, session=session, data=data)
                    events.append(event)
                    prev = event.hash
                self._insert(events)
                for event in events:
                    for sink in self._sinks:
                        sink.emit(event.as_line_dict())
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return events

    def _insert(self, events: list[ChainedEvent]) -> None:
        rows = []
        for event in events:
            columns = schema.index_columns(event.event)
            rows.append((event.seq, event.hash, *(columns[name] for name in _COLUMNS), event.body))
        self._conn.executemany(
            "INSERT INTO events (seq, hash, kind, session, ts, namespace, pod, user_name, status, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _head_locked(self) -> tuple[int, str]:
        row = self._conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row:
            return int(row[0]), str(row[1])
        return self._checkpoint()

    def _checkpoint(self) -> tuple[int, str]:
        row = self._conn.execute("SELECT seq, hash FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    # -- reading --------------------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        with self._guard():
            return self._head_locked()

    def count_events(self) -> int:
        with self._guard():
            return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def iter_rows(self) -> Iterator[StoredRow]:
        with self._guard():
            cursor = self._conn.execute(
                "SELECT seq, hash, body, kind, session, ts, namespace, pod, user_name, status"
                " FROM events ORDER BY seq"
            )
            for row in cursor:
                yield StoredRow(row[0], row[1], row[2], dict(zip(_COLUMNS, row[3:], strict=True)))

    def session_events(self, session_id: str) -> list[dict[str, Any]]:
        with self._guard():
            rows = self._conn.execute(
                "SELECT body, hash FROM events WHERE session = ? ORDER BY seq", (session_id,)
            ).fetchall()
        return [self._event(body, digest) for body, digest in rows]

    def resolve_session(self, prefix: str) -> str:
        """A full id or a unique prefix of one; NotFoundError or UsageError (ambiguous) otherwise."""
        if not prefix:
            raise UsageError("a session id (or a unique prefix of one) is required")
        with self._guard():
            rows = self._conn.execute(
                "SELECT session FROM events WHERE kind = 'session.start' AND session >= ? AND session < ?"
                " ORDER BY session LIMIT 6",
                (prefix, prefix + "\U0010ffff"),
            ).fetchall()
        if not rows:
            raise NotFoundError(
                f"no session matches {prefix!r}", hint="list sessions with `kdebug sessions list`"
            )
        if len(rows) > 1:
            shown = ", ".join(row[0] for row in rows[:5])
            raise UsageError(
                f"session prefix {prefix!r} is ambiguous: {shown}{', ...' if len(rows) > 5 else ''}"
            )
        return str(rows[0][0])

    def record(self, session_id: str) -> dict[str, Any]:
        return self._folded(self.session_events(session_id))

    def _folded(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The record of one session's events; a field of the wrong type (a forged row) is a StoreError."""
        try:
            return self._with_status(schema.fold_record(events))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            session = events[0].get("session") if events else None
            raise self._damaged(f"session {session!r}: {type(exc).__name__}: {exc}") from None

    def list_sessions(self, query: SessionQuery) -> list[dict[str, Any]]:
        """Newest first; status running/interrupted of crashed sessions is derived here (see schema)."""
        sql, params, needs_liveness = _list_sql(query)
        pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        with self._guard():
            cursor = self._conn.execute(sql, params)
            for start_body, start_hash, end_body, end_hash in cursor:
                start = self._event(start_body, start_hash)
                end = self._event(end_body, end_hash) if end_body else None
                folded = self._folded([start, end] if end else [start]) if needs_liveness else None
                if folded is not None and folded["status"] != query.status:
                    continue
                pairs.append((start, end))
                if query.limit and len(pairs) >= query.limit:
                    break
            cursor.close()
            updates = self._updates_for([start["session"] for start, _ in pairs])
        records = []
        for start, end in pairs:
            events = [start, *updates.get(start["session"], []), *([end] if end else [])]
            records.append(self._folded(events))
        return records

    def _updates_for(self, session_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(session_ids), 500):
            chunk = session_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                "SELECT session, body, hash FROM events WHERE kind = 'session.update'"
                f" AND session IN ({marks})"
                " ORDER BY seq",
                chunk,
            ).fetchall()
            for session, body, digest in rows:
                found.setdefault(session, []).append(self._event(body, digest))
        return found

    def _with_status(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("status", schema.STATUS_RUNNING) != schema.STATUS_RUNNING:
            return record
        heartbeat_age = None
        name = record.get("transcript")
        if isinstance(name, str) and TRANSCRIPT_NAME.fullmatch(name):
            try:
                heartbeat_age = time.time() - (self.transcripts_dir / name).stat().st_mtime
            except OSError:
                heartbeat_age = None
        status = schema.derive_status(
            record,
            local_host=socket.gethostname(),
            local_boot_id=boot_id(),
            process_start_of=process_start_time,
            heartbeat_age=heartbeat_age,
        )
        return {**record, "status": status}

    def transcript_path(self, record: Mapping[str, Any]) -> Path | None:
        name = record.get("transcript")
        return self.transcripts_dir / self._checked_name(record.get("session_id"), name) if name else None

    def _checked_name(self, session: Any, name: Any) -> str:
        """A transcript name from the database, only if it is one kdebug writes (never a path elsewhere)."""
        if isinstance(name, str) and TRANSCRIPT_NAME.fullmatch(name):
            return name
        raise StoreError(
            _bad_name(session, name),
            hint="nothing was read or deleted; `kdebug sessions verify` checks the store",
        )

    # -- verification ---------------------------------------------------------------------------------
    def verify(self, expect_head: str | None = None) -> VerifyResult:
        with self._guard():
            problems = self._conn.execute("PRAGMA quick_check").fetchall()
            if problems and problems[0][0] != "ok":
                raise self._corrupt(str(problems[0][0]))
            start_seq, start_hash = self._first_checkpoint_needed()
        report = verify_chain(
            self.iter_rows(), start_seq=start_seq, start_hash=start_hash, expect_head=expect_head
        )
        if not report.ok:
            return VerifyResult(report, 0)
        report.problem = self._transcript_name_problem()
        if report.problem is not None:
            return VerifyResult(report, 0)
        checked, problem = check_transcripts(self._transcript_claims(), self._digest_of)
        report.problem = problem
        return VerifyResult(report, checked)

    def _first_checkpoint_needed(self) -> tuple[int, str]:
        first = self._conn.execute("SELECT seq FROM events ORDER BY seq LIMIT 1").fetchone()
        row = self._conn.execute(
            "SELECT seq, hash FROM checkpoints WHERE seq < ? ORDER BY seq DESC LIMIT 1",
            (first[0] if first else 1 << 62,),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def _transcript_name_problem(self) -> Problem | None:
        with self._guard():
            cursor = self._conn.execute(
                "SELECT seq, session, body FROM events WHERE kind IN (?, ?) ORDER BY seq",
                (KIND_START, KIND_END),
            )
            for seq, session, body in cursor:
                name = self._event(body, "")["data"].get("transcript")
                if name and not (isinstance(name, str) and TRANSCRIPT_NAME.fullmatch(name)):
                    return Problem("transcript", seq, _bad_name(session, name), session)
        return None

    def _transcript_claims(self) -> Iterator[TranscriptClaim]:
        with self._guard():
            cursor = self._conn.execute(
                "SELECT session, body FROM events WHERE kind = 'session.end' ORDER BY seq"
            )
            for session, body in cursor:
                data = self._event(body, "")["data"]
                if not (data.get("transcript") and data.get("transcript_sha256")):
                    continue
                yield TranscriptClaim(
                    session, data["transcript"], data["transcript_size"], data["transcript_sha256"]
                )

    def _digest_of(self, name: str) -> tuple[int, str] | str | None:
        try:
            return file_digest(self.transcripts_dir / name)
        except OSError as exc:  # a directory or an unreadable file where the transcript should be
            return exc.strerror or type(exc).__name__

    # -- pruning --------------------------------------------------------------------------------------
    def prune(self, cutoff: str, now: str, *, dry_run: bool = False) -> PruneResult:
        """Remove whole sessions that ended before `cutoff` from the start of the chain; record it."""
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = self._prune_locked(cutoff, now, dry_run)
                self._conn.execute("ROLLBACK" if dry_run else "COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if not dry_run:
            for name in result[1]:
                (self.transcripts_dir / name).unlink(missing_ok=True)
        return result[0]

    def _prune_locked(self, cutoff: str, now: str, dry_run: bool) -> tuple[PruneResult, list[str]]:
        through = self._prunable_prefix(cutoff)
        rows = self._conn.execute("SELECT kind, body FROM events WHERE seq <= ?", (through,)).fetchall()
        starts = [self._event(body, "")["data"] for kind, body in rows if kind == KIND_START]
        # Checked before anything is deleted: one forged name refuses the whole prune (rolled back).
        transcripts = [
            self._checked_name(data.get("session_id"), data["transcript"])
            for data in starts
            if data.get("transcript")
        ]
        through_hash = ""
        if rows:
            through_hash = self._conn.execute("SELECT hash FROM events WHERE seq = ?", (through,)).fetchone()[
                0
            ]
        summary = PruneResult(
            len(starts), len(rows), len(transcripts), through if rows else 0, through_hash, None
        )
        if dry_run:
            return summary, []
        data: dict[str, Any] = {
            "older_than": cutoff,
            "sessions_removed": len(starts),
            "events_removed": len(rows),
            "transcripts_removed": len(transcripts),
            "os_user": local_user(),
            "hostname": socket.gethostname(),
        }
        if rows:
            # The checkpoint: the remaining chain continues from this hash; the prune event records it too.
            self._conn.execute("DELETE FROM events WHERE seq <= ?", (through,))
            self._conn.execute(
                "INSERT INTO checkpoints (seq, hash, ts) VALUES (?, ?, ?)", (through, through_hash, now)
            )
            data.update(through_seq=through, through_hash=through_hash)
        head_seq, head_hash = self._head_locked()
        event = make_event(seq=head_seq + 1, prev=head_hash, ts=now, kind=KIND_PRUNE, session=None, data=data)
        self._insert([event])
        for sink in self._sinks:
            sink.emit(event.as_line_dict())
        return PruneResult(**{**summary.__dict__, "event": event}), transcripts

    def _prunable_prefix(self, cutoff: str) -> int:
        """The last seq of the longest chain prefix made only of whole sessions that ended before cutoff."""
        self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS prunable (session TEXT PRIMARY KEY)")
        self._conn.execute("DELETE FROM prunable")
        self._conn.execute(
            "INSERT OR IGNORE INTO prunable SELECT session FROM events WHERE kind = 'session.end' AND ts < ?",
            (cutoff,),
        )
        # Crashed sessions (no end event, recording process gone) that started before the cutoff go too.
        unended = self._conn.execute(
            "SELECT s.body, s.hash FROM events s WHERE s.kind = 'session.start' AND s.ts < ? AND NOT EXISTS"
            " (SELECT 1 FROM events e WHERE e.session = s.session AND e.kind = 'session.end')",
            (cutoff,),
        ).fetchall()
        for body, digest in unended:
            record = self._folded([self._event(body, digest)])
            if record["status"] == schema.STATUS_INTERRUPTED:
                self._conn.execute("INSERT OR IGNORE INTO prunable VALUES (?)", (record["session_id"],))
        keep = self._conn.execute(
            "SELECT min(seq) FROM events WHERE NOT ((session IS NULL AND ts < ?)"
            " OR session IN (SELECT session FROM prunable))",
            (cutoff,),
        ).fetchone()[0]
        through = (keep if keep is not None else self._head_locked()[0] + 1) - 1
        while through > 0:
            # A session straddling the boundary is kept whole: move the boundary before its first event.
            straddler = self._conn.execute(
                "SELECT min(seq) FROM events WHERE seq <= ? AND session IN "
                "(SELECT session FROM events WHERE seq > ? AND session IS NOT NULL)",
                (through, through),
            ).fetchone()[0]
            if straddler is None:
                break
            through = straddler - 1
        return through


def _bad_name(session: Any, name: Any) -> str:
    return (
        f"session {session} names transcript {name!r}, which is not a kdebug transcript name "
        "(SESSION_ID.cast): the record was forged or damaged"
    )


def _parse_event(body: str) -> dict[str, Any]:
    """A stored body as an event; ValueError naming what is wrong when a row was damaged or forged."""
    event = json.loads(body)
    if not isinstance(event, dict):
        raise ValueError(f"the body is a JSON {type(event).__name__}, not an object")
    for name, kinds in (
        ("kind", str),
        ("ts", str),
        ("seq", int),
        ("data", dict),
        ("session", (str, type(None))),
    ):
        if not isinstance(event.get(name, None if name == "session" else ...), kinds):
            raise ValueError(f"its field {name!r} is missing or of the wrong type")
    return event


def _list_sql(query: SessionQuery) -> tuple[str, list[Any], bool]:
    where = ["s.kind = 'session.start'"]
    params: list[Any] = []
    for column, value in (
        ("s.pod", query.pod),
        ("s.namespace", query.namespace),
        ("s.user_name", query.user),
    ):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if query.since:
        where.append("s.ts >= ?")
        params.append(query.since)
    if query.until:
        where.append("s.ts < ?")
        params.append(query.until)
    needs_liveness = query.status in (schema.STATUS_RUNNING, schema.STATUS_INTERRUPTED)
    if query.status == schema.STATUS_RUNNING:
        where.append("e.seq IS NULL")
    elif query.status == schema.STATUS_INTERRUPTED:
        where.append("(e.seq IS NULL OR e.status = 'interrupted')")
    elif query.status:
        where.append("e.status = ?")
        params.append(query.status)
    sql = (
        "SELECT s.body, s.hash, e.body, e.hash FROM events s"
        " LEFT JOIN events e ON e.session = s.session AND e.kind = 'session.end'"
        f" WHERE {' AND '.join(where)} ORDER BY s.ts DESC, s.seq DESC"
    )
    if query.limit and not needs_liveness:
        sql += " LIMIT ?"
        params.append(query.limit)
    return sql, params, needs_liveness


# -- local facts used to tell a crashed recording -------------------------------------------------------
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int | None:
    """Clock ticks since boot when `pid` started (field 22 of /proc/PID/stat), None if it is gone.

    Without /proc (macOS), 0 for a live pid: pid reuse is then not detected.
    """
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields and fields[0] == "Z":  # a zombie has exited; only its parent has not reaped it yet
        return None
    return int(fields[19])


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def file_digest(path: Path) -> tuple[int, str] | None:
    try:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256")
            return handle.tell(), digest.hexdigest()
    except FileNotFoundError:
        return None
