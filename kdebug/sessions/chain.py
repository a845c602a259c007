"""PURE: canonical JSON, event hashing and hash-chain verification.

Each event is stored as its canonical JSON `body` (sorted keys, no spaces, UTF-8) holding
`v, seq, ts, kind, session, data, prev`; its hash is SHA-256 of that body. `prev` is the previous
event's hash (GENESIS for the first event, or the hash a prune checkpoint continues from), so
altering, removing, reordering or inserting any event breaks the chain at a place verify can name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kdebug.sessions.schema import KIND_PRUNE, SCHEMA_VERSION, index_columns

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def hash_body(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainedEvent:
    seq: int
    hash: str
    body: str
    event: dict[str, Any]

    def as_line_dict(self) -> dict[str, Any]:
        """The event as sinks and exports carry it: the hashed fields plus its own hash."""
        return {**self.event, "hash": self.hash}


def make_event(
    *, seq: int, prev: str, ts: str, kind: str, session: str | None, data: Mapping[str, Any]
) -> ChainedEvent:
    event = {
        "v": SCHEMA_VERSION,
        "seq": seq,
        "ts": ts,
        "kind": kind,
        "session": session,
        "data": dict(data),
        "prev": prev,
    }
    body = canonical_json(event)
    return ChainedEvent(seq=seq, hash=hash_body(body), body=body, event=json.loads(body))


@dataclass(frozen=True)
class StoredRow:
    """One row as the store holds it: the row key, the stored hash, the body and the index columns."""

    row: int
    hash: str
    body: str
    columns: Mapping[str, Any]


@dataclass(frozen=True)
class Problem:
    kind: str  # altered | removed | reordered | inserted | truncated | checkpoint | transcript
    seq: int | None
    message: str
    session: str | None = None


@dataclass
class ChainReport:
    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Peekable:
    def __init__(self, rows: Iterable[StoredRow]):
        self._it: Iterator[StoredRow] = iter(rows)
        self._next: StoredRow | None = None

    def __iter__(self) -> _Peekable:
        return self

    def __next__(self) -> StoredRow:
        if self._next is not None:
            row, self._next = self._next, None
            return row
        return next(self._it)

    def peek(self) -> StoredRow | None:
        if self._next is None:
            self._next = next(self._it, None)
        return self._next


def _body_seq(row: StoredRow | None) -> int | None:
    if row is None:
        return None
    try:
        seq = json.loads(row.body).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


def _parse_event(row: StoredRow) -> dict[str, Any] | None:
    try:
        event = json.loads(row.body)
    except ValueError:
        return None
    needed = ("seq", "ts", "kind", "prev", "data")
    if not isinstance(event, dict) or any(key not in event for key in needed):
        return None
    if not isinstance(event["seq"], int) or not isinstance(event["data"], dict):
        return None
    return event


def _content_problem(row: StoredRow, event: dict[str, Any] | None) -> Problem | None:
    """An event whose stored bytes no longer match its hash, or whose index columns were edited."""
    if event is None or hash_body(row.body) != row.hash:
        seq = event["seq"] if event else row.row
        session = event.get("session") if event else None
        return Problem(
            "altered", seq, f"event {seq} was altered: its contents do not match its hash", session
        )
    expected = index_columns(event)
    for name, value in expected.items():
        if name in row.columns and row.columns[name] != value:
            return Problem(
                "altered",
                event["seq"],
                f"event {event['seq']} was altered: its index column {name!r} differs from the event",
                event.get("session"),
            )
    return None


def _link_problem(
    event: dict[str, Any], expected: int, prev_hash: str, prev_prev_hash: str | None, rows: _Peekable
) -> Problem | None:
    """Why `event` does not follow the previous one: inserted, reordered, removed, or the previous altered."""
    seq, session = event["seq"], event.get("session")
    if seq == expected and event["prev"] == prev_hash:
        return None
    if seq == expected - 1 and prev_prev_hash is not None and event["prev"] == prev_prev_hash:
        return Problem(
            "inserted", seq, f"an event was inserted before event {seq}: two events claim seq {seq}"
        )
    if seq < expected:
        return Problem("reordered", seq, f"event {seq} was reordered: it appears after event {expected - 1}")
    if seq > expected:
        if _body_seq(rows.peek()) == expected:
            return Problem("reordered", seq, f"event {seq} was reordered: it appears before event {expected}")
        gap = f"event {expected}" if seq == expected + 1 else f"events {expected}..{seq - 1}"
        return Problem(
            "removed", expected, f"{gap} removed: event {seq} follows event {expected - 1}", session
        )
    return Problem(
        "altered",
        expected - 1,
        f"event {expected - 1} was altered or replaced: event {seq} does not chain to it",
    )


def verify_chain(
    rows: Iterable[StoredRow],
    *,
    start_seq: int = 0,
    start_hash: str = GENESIS,
    expect_head: str | None = None,
) -> ChainReport:
    """Walk the stored rows in order; stop at the first problem. `start_*` is the prune checkpoint if any."""
    report = ChainReport(head_seq=start_seq, head_hash=start_hash)
    expected, prev_hash, prev_prev_hash = start_seq + 1, start_hash, None
    anchor_found = expect_head is None or expect_head == start_hash
    checkpoint_recorded = start_seq == 0
    peekable = _Peekable(rows)
    for row in peekable:
        event = _parse_event(row)
        problem = _content_problem(row, event) or _link_problem(
            event,
            expected,
            prev_hash,
            prev_prev_hash,
            peekable,  # type: ignore[arg-type]
        )
        if problem:
            report.problem = problem
            return report
        assert event is not None
        if event["kind"] == KIND_PRUNE and event["data"].get("through_hash") == start_hash:
            checkpoint_recorded = checkpoint_recorded or event["data"].get("through_seq") == start_seq
        anchor_found = anchor_found or row.hash == expect_head
        prev_prev_hash, prev_hash, expected = prev_hash, row.hash, event["seq"] + 1
        report.events += 1
        report.head_seq, report.head_hash = event["seq"], row.hash
    if not checkpoint_recorded:
        report.problem = Problem(
            "checkpoint",
            start_seq,
            f"the chain starts after event {start_seq} but no prune event in the chain records "
            "that checkpoint",
        )
    elif not anchor_found:
        report.problem = Problem(
            "truncated",
            report.head_seq,
            f"the store does not extend the expected head {expect_head}: events were removed from the end "
            f"or the chain was rewritten (the store's head is event {report.head_seq} {report.head_hash})",
        )
    return report


@dataclass(frozen=True)
class TranscriptClaim:
    session: str
    name: str
    size: int
    sha256: str


def check_transcripts(
    claims: Iterable[TranscriptClaim], digest_of: Callable[[str], tuple[int, str] | str | None]
) -> tuple[int, Problem | None]:
    """Compare each recorded transcript size and hash with the file's.

    `digest_of` returns (size, sha256), None if the file is missing, or why it cannot be read.
    """
    checked = 0
    for claim in claims:
        actual = digest_of(claim.name)
        if isinstance(actual, str):
            return checked, Problem(
                "transcript",
                None,
                f"transcript {claim.name} of session {claim.session} is not a readable file ({actual})",
                claim.session,
            )
        if actual is None:
            return checked, Problem(
                "transcript",
                None,
                f"transcript {claim.name} of session {claim.session} was removed",
                claim.session,
            )
        size, sha = actual
        if (size, sha) != (claim.size, claim.sha256):
            return checked, Problem(
                "transcript",
                None,
                f"transcript {claim.name} of session {claim.session} was altered "
                f"(recorded {claim.size} bytes sha256 {claim.sha256[:12]}..., "
                f"found {size} bytes sha256 {sha[:12]}...)",
                claim.session,
            )
        checked += 1
    return checked, None
