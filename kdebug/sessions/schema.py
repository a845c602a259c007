"""PURE: the versioned audit record schema: event kinds, record fields, validation, folding.

A session is a run of events in the hash chain: one `session.start`, any number of `session.update`,
and one `session.end` (missing when the recording process died). The record shown to users is the
fold of those events; nothing is ever updated in place. docs/audit.md documents every field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1

KIND_START = "session.start"
KIND_UPDATE = "session.update"
KIND_END = "session.end"
KIND_PRUNE = "store.prune"
EVENT_KINDS = (KIND_START, KIND_UPDATE, KIND_END, KIND_PRUNE)

STATUS_RUNNING = "running"
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"
STATUSES = (STATUS_RUNNING, STATUS_OK, STATUS_FAILED, STATUS_INTERRUPTED)
END_STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_INTERRUPTED)

_STR = (str,)
_INT = (int,)
_NUM = (int, float)
_BOOL = (bool,)
_LIST = (list,)
_ANY_SCALAR = (str, dict, list)

# name -> (accepted types, who fills it, description). Callers of the recorder pass the "caller" fields.
RECORD_FIELDS: dict[str, tuple[tuple[type, ...], str, str]] = {
    "session_id": (_STR, "recorder", "the id, also KDEBUG_SESSION_ID in the debug container's env"),
    "schema": (_INT, "recorder", "the schema version of this record"),
    "status": (_STR, "recorder", "running, ok, failed or interrupted"),
    "started_at": (_STR, "recorder", "UTC start time (RFC 3339, milliseconds)"),
    "ended_at": (_STR, "recorder", "UTC end time; absent while running or when interrupted by a crash"),
    "duration_seconds": (_NUM, "recorder", "wall time from start to end"),
    "exit_code": (_INT, "recorder", "the remote command's exit code, or kdebug's own"),
    "error": (_STR, "recorder", "kdebug's error message if the session failed"),
    "error_kind": (_STR, "recorder", "the kind of kdebug error (not_found, timeout, ...) when one ended it"),
    "server": (_STR, "caller", "the API server URL"),
    "context": (_STR, "caller", "the kubeconfig context"),
    "kube_user": (_STR, "caller", "Kubernetes user name (SelfSubjectReview, else the kubeconfig user)"),
    "kube_groups": (_LIST, "caller", "Kubernetes groups from SelfSubjectReview"),
    "kube_user_source": (_STR, "caller", "selfsubjectreview | kubeconfig: where kube_user came from"),
    "os_user": (_STR, "recorder", "the local OS user running kdebug"),
    "hostname": (_STR, "recorder", "the local host name"),
    "pid": (_INT, "recorder", "the recording process id (used to tell a crashed session)"),
    "boot_id": (_STR, "recorder", "the local kernel boot id (used to tell a crashed session)"),
    "process_start": (_INT, "recorder", "the recording process start time in clock ticks since boot"),
    "kdebug_version": (_STR, "recorder", "the kdebug version that recorded the session"),
    "namespace": (_STR, "caller", "the target pod's namespace"),
    "pod": (_STR, "caller", "the target pod's name"),
    "pod_uid": (_STR, "caller", "the target pod's UID"),
    "node": (_STR, "caller", "the node the pod runs on"),
    "container": (_STR, "caller", "the target container"),
    "target_image": (_STR, "caller", "the target container's image reference"),
    "target_image_digest": (_STR, "caller", "the target container's image digest (imageID)"),
    "classification": (_ANY_SCALAR, "caller", "the classification verdict of the target image"),
    "debug_image": (_STR, "caller", "the debug image used"),
    "debug_image_reason": (_STR, "caller", "why that debug image was chosen"),
    "profile": (_STR, "caller", "the security profile (general, baseline, restricted, ...)"),
    "ephemeral_container": (_STR, "caller", "the ephemeral container's name"),
    "copy_pod": (_STR, "caller", "the copy pod's name when debugging a copy"),
    "reused": (_BOOL, "caller", "true when an existing debug container was reused"),
    "command": (_LIST, "caller", "the command run in the debug container (list of strings)"),
    "reason": (_STR, "recorder", "the --reason text (ticket or incident id)"),
    "recorded": (_BOOL, "recorder", "false when the user turned the transcript off (--no-record)"),
    "record_input": (_BOOL, "recorder", "true when keyboard input is in the transcript (--record-input)"),
    "transcript": (_STR, "recorder", "the transcript file name, relative to the transcripts directory"),
    "transcript_size": (_INT, "recorder", "the transcript size in bytes"),
    "transcript_sha256": (_STR, "recorder", "the transcript's SHA-256 (hex)"),
    "transcript_truncated": (_BOOL, "recorder", "true when output passed the size cap and was dropped"),
    "transcript_dropped_bytes": (_INT, "recorder", "output bytes not stored because of the cap"),
    "extra": ((dict,), "caller", "caller fields the schema does not know, kept as given"),
}

CALLER_FIELDS = frozenset(name for name, (_t, who, _d) in RECORD_FIELDS.items() if who == "caller")

# The store columns derived from each event (see index_columns).
INDEXED_COLUMNS = ("kind", "session", "ts", "namespace", "pod", "user_name", "status")


class SchemaError(ValueError):
    """A programming error: a field with the wrong type (callers pass plain data)."""


def new_session_id(now: datetime, random_suffix: Callable[[int], str]) -> str:
    """Sortable by time, unique enough with 6 random base-36 characters: `20261127-063510-k3x9qa`."""
    suffix = random_suffix(6)
    if not re.fullmatch(r"[0-9a-z]{6}", suffix):
        raise SchemaError(f"random suffix must be 6 lowercase letters or digits, got {suffix!r}")
    return f"{now:%Y%m%d-%H%M%S}-{suffix}"


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds; sorts lexicographically in time order."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def split_caller_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate caller fields; unknown names go under `extra` instead of being dropped or refused."""
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in fields.items():
        if name in RECORD_FIELDS and name != "extra":
            known[name] = value
        else:
            extra[name] = value
    problems = field_problems(known)
    if problems:
        raise SchemaError("; ".join(problems))
    if extra:
        known["extra"] = extra
    return known


def field_problems(fields: Mapping[str, Any]) -> list[str]:
    """Type problems of known fields (None is allowed: a value the caller could not find out)."""
    problems = []
    for name, value in fields.items():
        spec = RECORD_FIELDS.get(name)
        if spec is None or value is None:
            continue
        types = spec[0]
        if isinstance(value, bool) and bool not in types:
            problems.append(f"field {name!r} must be {_type_names(types)}, got bool")
        elif not isinstance(value, types):
            problems.append(f"field {name!r} must be {_type_names(types)}, got {type(value).__name__}")
    if fields.get("command") is not None and not all(isinstance(part, str) for part in fields["command"]):
        problems.append("field 'command' must be a list of strings")
    status = fields.get("status")
    if status is not None and status not in STATUSES:
        problems.append(f"field 'status' must be one of {', '.join(STATUSES)}, got {status!r}")
    return problems


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def fold_record(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge one session's events (in chain order) into its record; `status` stays running without an end."""
    record: dict[str, Any] = {}
    for event in events:
        kind = event["kind"]
        data = event.get("data") or {}
        if kind == KIND_START:
            record.update(data)
            record["started_at"] = event["ts"]
            record.setdefault("status", STATUS_RUNNING)
        elif kind == KIND_UPDATE:
            extra = {**record.get("extra", {}), **data.get("extra", {})}
            record.update(data)
            if extra:
                record["extra"] = extra
        elif kind == KIND_END:
            record.update(data)
            record["ended_at"] = event["ts"]
        record["last_seq"] = event["seq"]
        record["last_hash"] = event.get("hash")
    return record


def index_columns(event: Mapping[str, Any]) -> dict[str, Any]:
    """The store columns derived from an event (verify recomputes them to catch edited indexes)."""
    data = event.get("data") or {}
    is_start = event["kind"] == KIND_START
    return {
        "kind": event["kind"],
        "session": event.get("session"),
        "ts": event["ts"],
        "namespace": data.get("namespace") if is_start else None,
        "pod": data.get("pod") if is_start else None,
        "user_name": (data.get("kube_user") or data.get("os_user")) if is_start else None,
        "status": data.get("status") if event["kind"] == KIND_END else None,
    }


HEARTBEAT_STALE_SECONDS = 120.0


def derive_status(
    record: Mapping[str, Any],
    *,
    local_host: str,
    local_boot_id: str,
    process_start_of: Callable[[int], int | None],
    heartbeat_age: float | None,
) -> str:
    """A session without an end event is `running` only while its recording process is provably alive.

    Same host and boot: the pid must exist with the recorded start time (so a reused pid does not
    count). Another boot of this host: interrupted. Another host: running while the transcript's
    heartbeat (its mtime, touched every 30 s) is fresher than HEARTBEAT_STALE_SECONDS.
    """
    status = record.get("status", STATUS_RUNNING)
    if status != STATUS_RUNNING:
        return str(status)
    if record.get("hostname") == local_host:
        if record.get("boot_id") != local_boot_id:
            return STATUS_INTERRUPTED
        pid = record.get("pid")
        alive = isinstance(pid, int) and process_start_of(pid) == record.get("process_start")
        return STATUS_RUNNING if alive else STATUS_INTERRUPTED
    if heartbeat_age is not None and heartbeat_age > HEARTBEAT_STALE_SECONDS:
        return STATUS_INTERRUPTED
    return STATUS_RUNNING
