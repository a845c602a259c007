"""`kdebug sessions`: list, show, replay, export, prune and verify recorded sessions; print the head."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kdebug import config as config_files
from kdebug import durations
from kdebug.cli import options as common
from kdebug.console.sanitize import terminal_safe  # every field may come from a forged record
from kdebug.durations import format_duration
from kdebug.errors import ExitCode, KdebugError, StoreError, UsageError
from kdebug.lazy import lazy_module
from kdebug.sessions import schema

if TYPE_CHECKING:
    from kdebug.sessions.store import SessionQuery, SessionStore

asciicast = lazy_module("kdebug.sessions.asciicast")
chain = lazy_module("kdebug.sessions.chain")
stores = lazy_module("kdebug.sessions.store")
rich_console = lazy_module("rich.console")
rich_table = lazy_module("rich.table")

JSON_VERSION = 1

sessions_app = typer.Typer(
    name="sessions",
    help=(
        "The audit log of debug sessions: records, transcripts, and a hash chain that shows tampering.\n\n"
        "Examples:\n\n"
        "  kdebug sessions list --since 24h\n\n"
        "  kdebug sessions show 20261127-0635\n\n"
        "  kdebug sessions verify --expect-head $(cat last-head.txt)"
    ),
    rich_markup_mode=None,
)


@sessions_app.callback(invoke_without_command=True)
def _sessions_root(ctx: typer.Context) -> None:
    # `kdebug sessions` alone shows the commands (no_args_is_help would end as an empty usage error).
    if ctx.invoked_subcommand is None:
        sys.stdout.write(ctx.get_help() + "\n")


_FIELD_ORDER = (
    "session_id",
    "status",
    "started_at",
    "ended_at",
    "duration_seconds",
    "exit_code",
    "error",
    "error_kind",
    "reason",
    "kube_user",
    "kube_user_source",
    "kube_groups",
    "os_user",
    "hostname",
    "server",
    "context",
    "namespace",
    "pod",
    "pod_uid",
    "node",
    "container",
    "target_image",
    "target_image_digest",
    "classification",
    "debug_image",
    "debug_image_reason",
    "profile",
    "ephemeral_container",
    "copy_pod",
    "reused",
    "command",
    "recorded",
    "record_input",
    "transcript",
    "transcript_size",
    "transcript_sha256",
    "transcript_truncated",
    "transcript_dropped_bytes",
)


def parse_time_bound(text: str, now: datetime, *, option: str) -> str:
    """`24h`, `90d`, `1h30m` (that long before now), or a date / RFC 3339 time; returns a store timestamp."""
    return schema.format_timestamp(durations.parse_instant(text, now, option=option))


def _now() -> datetime:
    return datetime.now(UTC)


def check_choice(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        raise UsageError(f"{option}: must be one of {', '.join(choices)}, got {value!r}")


# -- options --------------------------------------------------------------------------------------------
@dataclass
class SessionFilter:
    """--since/--until/--user/-n/--pod/--status of `list` and `export`; `complete()` reads the clock."""

    since: str | None = None
    until: str | None = None
    user: str | None = None
    namespace: str | None = None
    pod: str | None = None
    status: str | None = None
    now: datetime | None = None

    def complete(self) -> None:
        self.now = self.now or _now()

    def validate(self) -> None:
        if self.status and self.status not in schema.STATUSES:
            raise UsageError(f"--status: must be one of {', '.join(schema.STATUSES)}, got {self.status!r}")
        self.bounds()

    def bounds(self) -> tuple[str | None, str | None]:
        """--since and --until as store timestamps (call after complete)."""
        now = self.now or _now()
        since = parse_time_bound(self.since, now, option="--since") if self.since else None
        until = parse_time_bound(self.until, now, option="--until") if self.until else None
        return since, until

    def query(self, limit: int | None) -> SessionQuery:
        since, until = self.bounds()
        return stores.SessionQuery(
            since=since,
            until=until,
            user=self.user,
            namespace=self.namespace,
            pod=self.pod,
            status=self.status,
            limit=limit or None,
        )


@dataclass
class ListOptions:
    filter: SessionFilter = field(default_factory=SessionFilter)
    limit: int = 50
    output: str = "table"

    def complete(self) -> None:
        self.filter.complete()

    def validate(self) -> None:
        check_choice(self.output, ("table", "json"), "--output")
        self.filter.validate()
        if self.limit < 0:
            raise UsageError("--limit: must be 0 (no limit) or more")


@dataclass
class ShowOptions:
    session: str
    raw: bool = False
    output: str = "text"

    def complete(self) -> None:
        pass

    def validate(self) -> None:
        check_choice(self.output, ("text", "json"), "--output")


@dataclass
class ReplayOptions:
    session: str
    speed: float = 1.0
    max_idle: float | None = None

    def complete(self) -> None:
        pass

    def validate(self) -> None:
        if self.speed <= 0:
            raise UsageError("--speed: must be more than 0")
        if self.max_idle is not None and self.max_idle < 0:
            raise UsageError("--max-idle: must be 0 or more")


@dataclass
class ExportOptions:
    filter: SessionFilter = field(default_factory=SessionFilter)
    fmt: str = "jsonl"
    directory: str | None = None

    def complete(self) -> None:
        self.filter.complete()

    def validate(self) -> None:
        check_choice(self.fmt, ("jsonl", "asciicast"), "--format")
        self.filter.validate()


@dataclass
class PruneOptions:
    older_than: str
    dry_run: bool = False
    now: datetime | None = None

    def complete(self) -> None:
        self.now = self.now or _now()

    def validate(self) -> None:
        self.cutoff()

    def cutoff(self) -> str:
        return parse_time_bound(self.older_than, self.now or _now(), option="--older-than")


@dataclass
class VerifyOptions:
    expect_head: str | None = None

    def complete(self) -> None:
        if self.expect_head is not None:
            self.expect_head = self.expect_head.strip().lower()

    def validate(self) -> None:
        if self.expect_head is not None and not re.fullmatch(r"[0-9a-f]{64}", self.expect_head):
            raise UsageError(
                "--expect-head: must be a 64-character SHA-256 hex hash (from `kdebug sessions head`)"
            )


@dataclass
class HeadOptions:
    output: str = "text"

    def complete(self) -> None:
        pass

    def validate(self) -> None:
        check_choice(self.output, ("text", "json"), "--output")


# -- the store --------------------------------------------------------------------------------------------
def _open_store(*, required: bool) -> SessionStore | None:
    """The store for reading; None when nothing was ever recorded (unless the command needs one)."""
    path = stores.db_path_from_config(config_files.load_config())
    if not path.exists() and not required:
        # Still refuses (with a way out) when transcripts exist but the database is gone.
        probe_dir = path.parent / "transcripts"
        if not (probe_dir.is_dir() and any(probe_dir.glob("*.cast"))):
            sys.stderr.write(f"no sessions recorded yet (store: {path})\n")
            return None
    return stores.SessionStore(path, create=False)


# -- rendering ----------------------------------------------------------------------------------------
def _short_time(stamp: str | None) -> str:
    return (stamp or "")[:19].replace("T", " ")


def _duration(record: dict[str, Any]) -> str:
    seconds = record.get("duration_seconds")
    return format_duration(float(seconds)) if isinstance(seconds, int | float) else "-"


def _table_rows(records: list[dict[str, Any]]) -> list[list[str]]:

    rows = []
    for record in records:
        target = "/".join(str(record[key]) for key in ("namespace", "pod") if record.get(key))
        if record.get("container"):
            target += f" ({record['container']})"
        cells = [
            str(record.get("session_id", "")),
            _short_time(record.get("started_at")),
            _duration(record),
            str(record.get("status", "")),
            str(record.get("kube_user") or record.get("os_user") or ""),
            target,
            str(record.get("reason") or ""),
        ]
        rows.append([terminal_safe(cell, one_line=True) for cell in cells])
    return rows


_HEADERS = ["SESSION", "STARTED (UTC)", "DURATION", "STATUS", "USER", "TARGET", "REASON"]


def _print_table(records: list[dict[str, Any]]) -> None:
    rows = _table_rows(records)
    if sys.stdout.isatty():
        table = rich_table.Table(box=None, header_style="bold")
        for header in _HEADERS:
            # Ids and times stay whole (they are copied into `show`); other columns may wrap.
            table.add_column(header, no_wrap=header in ("SESSION", "STARTED (UTC)", "STATUS"))
        for row in rows:
            table.add_row(*row)
        rich_console.Console(markup=False, emoji=False, highlight=False).print(table)
        return
    widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    for row in [_HEADERS, *rows]:
        sys.stdout.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        sys.stdout.write("\n")


def _print_json(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    # JSON escapes C0 controls itself; DEL and C1 controls (8-bit CSI, OSC) it would write raw.
    text = re.sub("[\x7f-\x9f]", lambda match: f"\\u{ord(match.group()):04x}", text)
    sys.stdout.write(text + "\n")


def _format_value(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _print_record(record: dict[str, Any]) -> None:

    width = max(len(name) for name in _FIELD_ORDER)
    lines = [(name, record[name]) for name in _FIELD_ORDER if record.get(name) is not None]
    extra = record.get("extra")
    lines += list(extra.items()) if isinstance(extra, dict) else []
    for name, value in lines:
        line = f"{str(name).ljust(width)}  {_format_value(value)}"
        sys.stdout.write(terminal_safe(line, one_line=True) + "\n")


def _write_bytes(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8", "replace"))
    else:
        buffer.write(data)
        buffer.flush()


def _load_transcript(store: SessionStore, record: dict[str, Any]) -> list[Any] | None:
    """The transcript events; None (with a note on stderr) when there is none to show."""
    path = store.transcript_path(record)
    if path is None:
        sys.stderr.write("this session has no transcript (recording was turned off for it)\n")
        return None
    try:
        _header, events = asciicast.read_cast(path)
    except FileNotFoundError:
        raise StoreError(
            f"transcript {path} of session {record.get('session_id')} is missing",
            hint="`kdebug sessions verify` checks every transcript against the audit chain",
        ) from None
    except OSError as exc:  # a directory, or a file kdebug may not read, in the transcript's place
        raise StoreError(
            f"transcript {path} of session {record.get('session_id')} cannot be read: {exc.strerror or exc}",
            hint="`kdebug sessions verify` checks every transcript against the audit chain",
        ) from None
    except (asciicast.CastFormatError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"transcript {path} is damaged: {exc}",
            hint="`kdebug sessions verify` tells whether it was altered",
        ) from None
    return events


def _find_record(store: SessionStore, session: str) -> dict[str, Any]:
    return store.record(store.resolve_session(session))


# -- commands -----------------------------------------------------------------------------------------
_SINCE_HELP = "only sessions started after this: 30m, 24h, 90d, 2w, or a date/time (UTC)"


@sessions_app.command("list")
def list_command(
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help="only sessions started before this (same forms)"),
    user: str | None = typer.Option(None, "--user", help="Kubernetes user (or local user when unknown)"),
    namespace: str | None = typer.Option(None, "-n", "--namespace", help="the target pod's namespace"),
    pod: str | None = typer.Option(None, "--pod", help="the target pod's name"),
    status: str | None = typer.Option(None, "--status", help="running, ok, failed or interrupted"),
    limit: int = typer.Option(50, "--limit", help="at most this many sessions (0: all)"),
    output: str = typer.Option("table", "-o", "--output", help="table or json"),
) -> None:
    """List recorded sessions, newest first.

    Examples:

      kdebug sessions list --since 24h

      kdebug sessions list -n shop --pod web-7d9 --status failed -o json
    """
    session_filter = SessionFilter(since, until, user, namespace, pod, status)
    list_sessions(common.prepared(ListOptions(session_filter, limit, output)))


def list_sessions(options: ListOptions) -> None:
    query = options.filter.query(options.limit)
    store = _open_store(required=False)
    records = []
    if store is not None:
        with store:
            records = store.list_sessions(query)
    if options.output == "json":
        _print_json({"version": JSON_VERSION, "sessions": records})
    elif records:
        _print_table(records)


@sessions_app.command("show")
def show_command(
    session: str = typer.Argument(..., help="a session id, or a unique prefix of one"),
    raw: bool = typer.Option(
        False, "--raw", help="the transcript's original bytes, control sequences included"
    ),
    output: str = typer.Option("text", "-o", "--output", help="text or json (the record only)"),
) -> None:
    """Show a session's record and its transcript as plain text.

    Examples:

      kdebug sessions show 20261127-063510-k3x9qa

      kdebug sessions show 20261127-0635 --raw | less -R
    """
    show_session(common.prepared(ShowOptions(session, raw, output)))


def show_session(options: ShowOptions) -> None:
    store = _open_store(required=True)
    assert store is not None
    with store:
        record = _find_record(store, options.session)
        if options.output == "json":
            _print_json({"version": JSON_VERSION, "session": record})
            return
        if options.raw:
            events = _load_transcript(store, record)
            if events is not None:
                _write_bytes(asciicast.output_bytes(events))
            return
        _print_record(record)
        events = _load_transcript(store, record)
    if events is not None:
        sys.stdout.write("\n--- transcript (plain text) ---\n")
        text = asciicast.render_plain(asciicast.output_bytes(events))
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


@sessions_app.command("replay")
def replay_command(
    session: str = typer.Argument(..., help="a session id, or a unique prefix of one"),
    speed: float = typer.Option(1.0, "--speed", help="playback speed factor (2 = twice as fast)"),
    max_idle: float | None = typer.Option(None, "--max-idle", help="cap pauses at this many seconds"),
) -> None:
    """Play a session's transcript in the terminal with its original timing.

    The bytes written are exactly those the session printed.

    Examples:

      kdebug sessions replay 20261127-063510-k3x9qa --speed 2 --max-idle 1
    """
    replay_session(common.prepared(ReplayOptions(session, speed, max_idle)))


def replay_session(options: ReplayOptions) -> None:
    store = _open_store(required=True)
    assert store is not None
    with store:
        record = _find_record(store, options.session)
        events = _load_transcript(store, record)
    if events:
        asciicast.play(events, _write_bytes, speed=options.speed, max_idle=options.max_idle)


@sessions_app.command("export")
def export_command(
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help="only sessions started before this"),
    user: str | None = typer.Option(None, "--user", help="Kubernetes user (or local user when unknown)"),
    namespace: str | None = typer.Option(None, "-n", "--namespace", help="the target pod's namespace"),
    pod: str | None = typer.Option(None, "--pod", help="the target pod's name"),
    status: str | None = typer.Option(None, "--status", help="running, ok, failed or interrupted"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (chain events with hashes) or asciicast"),
    directory: str | None = typer.Option(None, "--dir", help="asciicast: one ID.cast per session here"),
) -> None:
    """Export sessions for shipping elsewhere.

    jsonl: every event of the matching sessions, one JSON line each, with its hash fields (the same
    lines the sinks write). asciicast: the transcript of the one matching session on stdout, or one
    file per session with --dir.

    Examples:

      kdebug sessions export --since 7d --format jsonl > sessions.jsonl

      kdebug sessions export --pod web --format asciicast --dir casts/
    """
    session_filter = SessionFilter(since, until, user, namespace, pod, status)
    export_sessions(common.prepared(ExportOptions(session_filter, fmt, directory)))


def export_sessions(options: ExportOptions) -> None:
    query = options.filter.query(0)
    store = _open_store(required=False)
    if store is None:
        return
    with store:
        records = list(reversed(store.list_sessions(query)))
        if options.fmt == "jsonl":
            for record in records:
                for event in store.session_events(record["session_id"]):
                    sys.stdout.write(chain.canonical_json(event) + "\n")
            return
        recorded = [record for record in records if store.transcript_path(record)]
        if options.directory is None:
            if len(recorded) != 1:
                raise UsageError(
                    f"{len(recorded)} recorded sessions match: asciicast export to stdout needs exactly one",
                    hint="narrow the filters, or pass --dir DIR to write one file per session",
                )
            _write_bytes(_read_transcript_bytes(store, recorded[0]))
            return
        target = Path(options.directory)
        target.mkdir(parents=True, exist_ok=True)
        for record in recorded:
            name = store.transcript_path(record).name  # type: ignore[union-attr] (checked: SESSION_ID.cast)
            (target / name).write_bytes(_read_transcript_bytes(store, record))
        sys.stderr.write(f"wrote {len(recorded)} transcript(s) to {target}\n")


def _read_transcript_bytes(store: SessionStore, record: dict[str, Any]) -> bytes:
    path = store.transcript_path(record)
    assert path is not None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"transcript {path} of session {record.get('session_id')} is missing") from None
    except OSError as exc:  # a directory, or a file kdebug may not read, in the transcript's place
        raise StoreError(
            f"transcript {path} of session {record.get('session_id')} cannot be read: {exc.strerror or exc}"
        ) from None


@sessions_app.command("prune")
def prune_command(
    older_than: str = typer.Option(
        ..., "--older-than", help="remove sessions that ended before this: 90d, 2w"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="say what would be removed, remove nothing"),
) -> None:
    """Remove old sessions and their transcripts, keeping the chain verifiable.

    Whole sessions are removed from the start of the chain; a checkpoint and a `store.prune` event
    record the hash the remaining chain continues from.

    Examples:

      kdebug sessions prune --older-than 90d --dry-run
    """
    prune_sessions(common.prepared(PruneOptions(older_than, dry_run)))


def prune_sessions(options: PruneOptions) -> None:
    now = options.now or _now()
    cutoff = options.cutoff()
    store = _open_store(required=True)
    assert store is not None
    with store:
        result = store.prune(cutoff, schema.format_timestamp(now), dry_run=options.dry_run)
    verb = "would remove" if options.dry_run else "removed"
    sys.stdout.write(
        f"{verb} {result.sessions} session(s), {result.events} event(s), {result.transcripts} transcript(s)"
        f" older than {cutoff}\n"
    )
    if result.event is not None:
        sys.stdout.write(f"head {result.event.seq} {result.event.hash}\n")


@sessions_app.command("verify")
def verify_command(
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="a head hash recorded earlier: prove the store still extends it"
    ),
) -> None:
    """Recompute the hash chain and every transcript's hash; name the first altered item.

    Exit code 71 when anything was altered, removed, reordered or inserted.

    Examples:

      kdebug sessions verify

      kdebug sessions verify --expect-head 3f2a...   (a hash from `sessions head` or a sink)
    """
    verify_sessions(common.prepared(VerifyOptions(expect_head)))


def verify_sessions(options: VerifyOptions) -> None:
    store = _open_store(required=True)
    assert store is not None
    with store:
        result = store.verify(options.expect_head)
    verified = result.chain
    if verified.problem is not None:
        raise KdebugError(f"verify failed: {verified.problem.message}", exit_code=ExitCode.VERIFY_FAILED)
    sys.stdout.write(
        f"ok: {verified.events} event(s) and {result.transcripts} transcript(s) verified;"
        f" head {verified.head_seq} {verified.head_hash}\n"
    )


@sessions_app.command("head")
def head_command(
    output: str = typer.Option("text", "-o", "--output", help="text (the hash) or json"),
) -> None:
    """Print the chain head hash: keep it elsewhere, later `verify --expect-head` it.

    Examples:

      kdebug sessions head >> ~/audit-anchors.txt
    """
    print_head(common.prepared(HeadOptions(output)))


def print_head(options: HeadOptions) -> None:
    store = _open_store(required=True)
    assert store is not None
    with store:
        seq, digest = store.head()
    if options.output == "json":
        _print_json({"version": JSON_VERSION, "seq": seq, "hash": digest})
    else:
        sys.stdout.write(digest + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(sessions_app, name="sessions")
