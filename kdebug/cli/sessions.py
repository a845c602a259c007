"""`kdebug sessions`: list, show, replay, export, prune and verify recorded sessions; print the head."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from kdebug.sessions.store import SessionQuery, SessionStore

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
    from kdebug.durations import parse_instant
    from kdebug.sessions.schema import format_timestamp

    return format_timestamp(parse_instant(text, now, option=option))


def _now() -> datetime:
    return datetime.now(UTC)


def _config() -> dict[str, Any]:
    from kdebug.config import load_config

    return load_config()


def _open_store(*, required: bool) -> SessionStore | None:
    """The store for reading; None when nothing was ever recorded (unless the command needs one)."""
    from kdebug.sessions.store import SessionStore, db_path_from_config

    path = db_path_from_config(_config())
    if not path.exists() and not required:
        # Still refuses (with a way out) when transcripts exist but the database is gone.
        probe_dir = path.parent / "transcripts"
        if not (probe_dir.is_dir() and any(probe_dir.glob("*.cast"))):
            sys.stderr.write(f"no sessions recorded yet (store: {path})\n")
            return None
    return SessionStore(path, create=False)


def _query(
    since: str | None,
    until: str | None,
    user: str | None,
    namespace: str | None,
    pod: str | None,
    status: str | None,
    limit: int | None,
) -> SessionQuery:
    from kdebug.errors import UsageError
    from kdebug.sessions.schema import STATUSES
    from kdebug.sessions.store import SessionQuery

    if status and status not in STATUSES:
        raise UsageError(f"--status: must be one of {', '.join(STATUSES)}, got {status!r}")
    if limit is not None and limit < 0:
        raise UsageError("--limit: must be 0 (no limit) or more")
    now = _now()
    return SessionQuery(
        since=parse_time_bound(since, now, option="--since") if since else None,
        until=parse_time_bound(until, now, option="--until") if until else None,
        user=user,
        namespace=namespace,
        pod=pod,
        status=status,
        limit=limit or None,
    )


def _check_choice(value: str, choices: tuple[str, ...], option: str) -> None:
    from kdebug.errors import UsageError

    if value not in choices:
        raise UsageError(f"{option}: must be one of {', '.join(choices)}, got {value!r}")


# -- rendering ----------------------------------------------------------------------------------------
def _short_time(stamp: str | None) -> str:
    return (stamp or "")[:19].replace("T", " ")


def _duration(record: dict[str, Any]) -> str:
    from kdebug.durations import format_duration

    seconds = record.get("duration_seconds")
    return format_duration(float(seconds)) if isinstance(seconds, int | float) else "-"


def _table_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for record in records:
        target = "/".join(str(record[key]) for key in ("namespace", "pod") if record.get(key))
        if record.get("container"):
            target += f" ({record['container']})"
        rows.append(
            [
                str(record.get("session_id", "")),
                _short_time(record.get("started_at")),
                _duration(record),
                str(record.get("status", "")),
                str(record.get("kube_user") or record.get("os_user") or ""),
                target,
                str(record.get("reason") or ""),
            ]
        )
    return rows


_HEADERS = ["SESSION", "STARTED (UTC)", "DURATION", "STATUS", "USER", "TARGET", "REASON"]


def _print_table(records: list[dict[str, Any]]) -> None:
    rows = _table_rows(records)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for header in _HEADERS:
            # Ids and times stay whole (they are copied into `show`); other columns may wrap.
            table.add_column(header, no_wrap=header in ("SESSION", "STARTED (UTC)", "STATUS"))
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    for row in [_HEADERS, *rows]:
        sys.stdout.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        sys.stdout.write("\n")


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _format_value(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _print_record(record: dict[str, Any]) -> None:
    width = max(len(name) for name in _FIELD_ORDER)
    for name in _FIELD_ORDER:
        if record.get(name) is not None:
            sys.stdout.write(f"{name.ljust(width)}  {_format_value(record[name])}\n")
    for name, value in (record.get("extra") or {}).items():
        sys.stdout.write(f"{str(name).ljust(width)}  {_format_value(value)}\n")


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
    from kdebug.errors import StoreError
    from kdebug.sessions.asciicast import CastFormatError, read_cast

    path = store.transcript_path(record)
    if path is None:
        sys.stderr.write("this session has no transcript (recording was turned off for it)\n")
        return None
    try:
        _header, events = read_cast(path)
    except FileNotFoundError:
        raise StoreError(
            f"transcript {path} of session {record.get('session_id')} is missing",
            hint="`kdebug sessions verify` checks every transcript against the audit chain",
        ) from None
    except (CastFormatError, UnicodeDecodeError) as exc:
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
    _check_choice(output, ("table", "json"), "--output")
    query = _query(since, until, user, namespace, pod, status, limit)
    store = _open_store(required=False)
    records = []
    if store is not None:
        with store:
            records = store.list_sessions(query)
    if output == "json":
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
    from kdebug.sessions.asciicast import output_bytes, render_plain

    _check_choice(output, ("text", "json"), "--output")
    store = _open_store(required=True)
    assert store is not None
    with store:
        record = _find_record(store, session)
        if output == "json":
            _print_json({"version": JSON_VERSION, "session": record})
            return
        if raw:
            events = _load_transcript(store, record)
            if events is not None:
                _write_bytes(output_bytes(events))
            return
        _print_record(record)
        events = _load_transcript(store, record)
    if events is not None:
        sys.stdout.write("\n--- transcript (plain text) ---\n")
        text = render_plain(output_bytes(events))
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
    from kdebug.errors import UsageError
    from kdebug.sessions.asciicast import play

    if speed <= 0:
        raise UsageError("--speed: must be more than 0")
    if max_idle is not None and max_idle < 0:
        raise UsageError("--max-idle: must be 0 or more")
    store = _open_store(required=True)
    assert store is not None
    with store:
        record = _find_record(store, session)
        events = _load_transcript(store, record)
    if events:
        play(events, _write_bytes, speed=speed, max_idle=max_idle)


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
    from kdebug.errors import UsageError
    from kdebug.sessions.chain import canonical_json

    _check_choice(fmt, ("jsonl", "asciicast"), "--format")
    query = _query(since, until, user, namespace, pod, status, 0)
    store = _open_store(required=False)
    if store is None:
        return
    with store:
        records = list(reversed(store.list_sessions(query)))
        if fmt == "jsonl":
            for record in records:
                for event in store.session_events(record["session_id"]):
                    sys.stdout.write(canonical_json(event) + "\n")
            return
        recorded = [record for record in records if store.transcript_path(record)]
        if directory is None:
            if len(recorded) != 1:
                raise UsageError(
                    f"{len(recorded)} recorded sessions match: asciicast export to stdout needs exactly one",
                    hint="narrow the filters, or pass --dir DIR to write one file per session",
                )
            _write_bytes(_read_transcript_bytes(store, recorded[0]))
            return
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        for record in recorded:
            (target / f"{record['session_id']}.cast").write_bytes(_read_transcript_bytes(store, record))
        sys.stderr.write(f"wrote {len(recorded)} transcript(s) to {target}\n")


def _read_transcript_bytes(store: SessionStore, record: dict[str, Any]) -> bytes:
    from kdebug.errors import StoreError

    path = store.transcript_path(record)
    assert path is not None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"transcript {path} of session {record.get('session_id')} is missing") from None


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
    from kdebug.sessions.schema import format_timestamp

    now = _now()
    cutoff = parse_time_bound(older_than, now, option="--older-than")
    store = _open_store(required=True)
    assert store is not None
    with store:
        result = store.prune(cutoff, format_timestamp(now), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
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
    from kdebug.errors import ExitCode, KdebugError, UsageError

    if expect_head is not None and not re.fullmatch(r"[0-9a-f]{64}", expect_head.strip().lower()):
        raise UsageError(
            "--expect-head: must be a 64-character SHA-256 hex hash (from `kdebug sessions head`)"
        )
    store = _open_store(required=True)
    assert store is not None
    with store:
        result = store.verify(expect_head.strip().lower() if expect_head else None)
    chain = result.chain
    if chain.problem is not None:
        raise KdebugError(f"verify failed: {chain.problem.message}", exit_code=ExitCode.VERIFY_FAILED)
    sys.stdout.write(
        f"ok: {chain.events} event(s) and {result.transcripts} transcript(s) verified;"
        f" head {chain.head_seq} {chain.head_hash}\n"
    )


@sessions_app.command("head")
def head_command(
    output: str = typer.Option("text", "-o", "--output", help="text (the hash) or json"),
) -> None:
    """Print the chain head hash: keep it elsewhere, later `verify --expect-head` it.

    Examples:

      kdebug sessions head >> ~/audit-anchors.txt
    """
    _check_choice(output, ("text", "json"), "--output")
    store = _open_store(required=True)
    assert store is not None
    with store:
        seq, digest = store.head()
    if output == "json":
        _print_json({"version": JSON_VERSION, "seq": seq, "hash": digest})
    else:
        sys.stdout.write(digest + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(sessions_app, name="sessions")
