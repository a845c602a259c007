"""`kdebug sessions verify`: each kind of tampering is found; the first bad event or transcript is named."""

from __future__ import annotations

import json

import pytest

from kdebug.errors import ExitCode
from kdebug.sessions.chain import hash_body, make_event

VERIFY_FAILED = int(ExitCode.VERIFY_FAILED)


@pytest.fixture
def three_sessions(env, record_session):
    """Three sessions of start/end events: seq 1..6."""
    return [record_session(output=[f"session {i}\r\n".encode()]) for i in range(3)]


def rewrite_body(env, seq: int, edit) -> None:
    (body,) = env.sql("SELECT body FROM events WHERE seq = ?", (seq,))[0]
    env.sql("UPDATE events SET body = ? WHERE seq = ?", (edit(body), seq))


def test_untouched_store_verifies(env, three_sessions, cli):
    result = cli("sessions", "verify")
    assert result.code == 0
    assert "ok: 6 event(s) and 3 transcript(s)" in result.out


def test_altered_event_is_named(env, three_sessions, cli):
    rewrite_body(env, 3, lambda body: body.replace('"pod":"web"', '"pod":"api"'))
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert "event 3 was altered" in result.err


def test_altered_event_with_a_recomputed_hash_is_named(env, three_sessions, cli):
    (body,) = env.sql("SELECT body FROM events WHERE seq = 3")[0]
    forged = body.replace('"container":"app"', '"container":"db"')
    env.sql("UPDATE events SET body = ?, hash = ? WHERE seq = 3", (forged, hash_body(forged)))
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert "event 3 was altered or replaced: event 4 does not chain to it" in result.err


def test_edited_index_column_is_caught(env, three_sessions, cli):
    env.sql("UPDATE events SET pod = 'elsewhere' WHERE seq = 3")
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert "event 3 was altered: its index column 'pod'" in result.err


def test_removed_event_is_named(env, three_sessions, cli):
    env.sql("DELETE FROM events WHERE seq = 4")
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert "event 4 removed: event 5 follows event 3" in result.err


def test_removed_first_event_is_named(env, three_sessions, cli):
    env.sql("DELETE FROM events WHERE seq = 1")
    result = cli("sessions", "verify")
    assert "event 1 removed" in result.err


def test_reordered_events_are_named(env, three_sessions, cli):
    columns = "hash, kind, session, ts, namespace, pod, user_name, status, body"
    rows = {row[0]: row[1:] for row in env.sql(f"SELECT seq, {columns} FROM events")}
    env.sql("DELETE FROM events WHERE seq IN (3, 4)")
    for seq, other in ((3, 4), (4, 3)):
        env.sql(
            f"INSERT INTO events (seq, {columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (seq, *rows[other])
        )
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert "event 4 was reordered: it appears before event 3" in result.err


def test_inserted_event_is_named(env, three_sessions, cli):
    (prev_hash,) = env.sql("SELECT hash FROM events WHERE seq = 2")[0]
    (template,) = env.sql("SELECT body FROM events WHERE seq = 3")[0]
    event = json.loads(template)
    forged = make_event(
        seq=3,
        prev=prev_hash,
        ts=event["ts"],
        kind="session.update",
        session=event["session"],
        data={"debug_image": "evil"},
    )
    env.sql("UPDATE events SET seq = seq + 1000 WHERE seq >= 3")
    env.sql("UPDATE events SET seq = seq - 999 WHERE seq >= 1000")
    env.sql(
        "INSERT INTO events (seq, hash, kind, session, ts, body) VALUES (3, ?, ?, ?, ?, ?)",
        (forged.hash, "session.update", event["session"], event["ts"], forged.body),
    )
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert "an event was inserted before event 3" in result.err


def test_altered_transcript_is_named(env, three_sessions, cli):
    path = three_sessions[1].transcript_path
    path.write_bytes(path.read_bytes().replace(b"session 1", b"session X"))
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert f"transcript {path.name} of session {three_sessions[1].session_id} was altered" in result.err


def test_removed_transcript_is_named(env, three_sessions, cli):
    three_sessions[2].transcript_path.unlink()
    result = cli("sessions", "verify")
    assert result.code == VERIFY_FAILED
    assert f"of session {three_sessions[2].session_id} was removed" in result.err


def test_truncation_at_the_end_passes_without_an_anchor(env, three_sessions, cli):
    env.sql("DELETE FROM events WHERE seq >= 5")
    assert cli("sessions", "verify").code == 0


def test_truncation_at_the_end_is_caught_by_expect_head(env, three_sessions, cli):
    head = cli("sessions", "head").out.strip()
    env.sql("DELETE FROM events WHERE seq >= 5")
    result = cli("sessions", "verify", "--expect-head", head)
    assert result.code == VERIFY_FAILED
    assert f"does not extend the expected head {head}" in result.err


def test_expect_head_accepts_an_older_anchor_the_store_extends(env, three_sessions, record_session, cli):
    head = cli("sessions", "head").out.strip()
    record_session()
    result = cli("sessions", "verify", "--expect-head", head)
    assert result.code == 0, result.err


def test_expect_head_must_be_a_hash(env, three_sessions, cli):
    result = cli("sessions", "verify", "--expect-head", "abc")
    assert result.code == int(ExitCode.USAGE)
    assert "64-character" in result.err
