"""The store: concurrent writers, broken or missing database files, pruning."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kdebug.errors import ExitCode, StoreError
from kdebug.sessions.recorder import open_recorder
from kdebug.sessions.store import SessionQuery, SessionStore

CHILD = Path(__file__).with_name("recording_child.py")
STORE_ERROR = int(ExitCode.STORE_ERROR)


def test_parallel_writers_lose_nothing_and_the_chain_verifies(env, cli):
    workers, per_worker = 4, 15
    children = [
        subprocess.Popen([sys.executable, str(CHILD), "many", str(per_worker), str(n)], env=os.environ.copy())
        for n in range(workers)
    ]
    assert [child.wait(timeout=120) for child in children] == [0] * workers
    with SessionStore(env.db, create=False) as store:
        assert store.count_events() == workers * per_worker * 3
        records = store.list_sessions(SessionQuery(limit=None))
    assert len(records) == workers * per_worker
    assert {record["ephemeral_container"] for record in records if record["pod"] == "pod-0"} == {
        f"kdebug-{i:05d}" for i in range(per_worker)
    }
    assert cli("sessions", "verify").code == 0


@pytest.mark.parametrize("command", [["list"], ["verify"], ["show", "2026"], ["head"]], ids=lambda c: c[0])
def test_corrupt_database_is_one_line_with_a_way_out(env, record_session, cli, command):
    record_session()
    for leftover in env.db.parent.glob("sessions.db-*"):
        leftover.unlink()
    env.db.write_bytes(b"this is not a database at all" * 100)
    result = cli("sessions", *command)
    assert result.code == STORE_ERROR
    assert "is corrupt" in result.err and f"mv {env.db} {env.db}.corrupt" in result.err
    assert "Traceback" not in result.err


def test_corrupt_database_refuses_to_record(env, record_session):
    record_session()
    env.db.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="is corrupt"):
        open_recorder(env.config())
    assert env.db.read_bytes() == b"garbage" * 1000


def test_missing_database_beside_transcripts_is_not_silently_replaced(env, record_session, cli):
    record_session()
    env.db.unlink()
    for leftover in env.db.parent.glob("sessions.db-*"):
        leftover.unlink()
    result = cli("sessions", "list")
    assert result.code == STORE_ERROR
    assert "is missing but 1 transcript(s) exist" in result.err
    with pytest.raises(StoreError, match="is missing"):
        open_recorder(env.config())


def test_list_without_any_store_is_empty_and_says_so(env, cli):
    result = cli("sessions", "list")
    assert (result.code, result.out) == (0, "")
    assert "no sessions recorded yet" in result.err


def test_verify_without_any_store_is_a_store_error(env, cli):
    result = cli("sessions", "verify")
    assert result.code == STORE_ERROR
    assert "no session store" in result.err


def days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@pytest.fixture
def old_and_new(env, record_session):
    old = [record_session(wall_clock=lambda: days_ago(120), fields={"pod": "old"}) for _ in range(2)]
    new = [record_session(fields={"pod": "new"}) for _ in range(2)]
    return old, new


def test_prune_removes_old_sessions_and_their_transcripts(env, old_and_new, cli):
    old, new = old_and_new
    result = cli("sessions", "prune", "--older-than", "90d")
    assert result.code == 0, result.err
    assert "removed 2 session(s), 4 event(s), 2 transcript(s)" in result.out
    listed = cli("sessions", "list", "-o", "json").json()["sessions"]
    assert [r["session_id"] for r in listed] == [rec.session_id for rec in reversed(new)]
    assert not old[0].transcript_path.exists() and new[0].transcript_path.exists()


def test_prune_keeps_the_chain_verifiable(env, old_and_new, cli):
    cli("sessions", "prune", "--older-than", "90d")
    result = cli("sessions", "verify")
    assert result.code == 0, result.err
    assert "ok: 5 event(s)" in result.out


def test_prune_records_itself_as_the_new_head(env, old_and_new, cli):
    cli("sessions", "prune", "--older-than", "90d")
    (kind, body) = env.sql("SELECT kind, body FROM events ORDER BY seq DESC LIMIT 1")[0]
    assert kind == "store.prune"
    assert '"sessions_removed":2' in body and '"through_seq":4' in body


def test_prune_dry_run_removes_nothing(env, old_and_new, cli):
    before = env.sql("SELECT count(*) FROM events")[0][0]
    result = cli("sessions", "prune", "--older-than", "90d", "--dry-run")
    assert "would remove 2 session(s)" in result.out
    assert env.sql("SELECT count(*) FROM events")[0][0] == before


def test_forged_checkpoint_without_a_prune_event_is_caught(env, old_and_new, cli):
    (digest,) = env.sql("SELECT hash FROM events WHERE seq = 2")[0]
    env.sql("DELETE FROM events WHERE seq <= 2")
    env.sql("INSERT INTO checkpoints (seq, hash, ts) VALUES (2, ?, 'x')", (digest,))
    result = cli("sessions", "verify")
    assert result.code == int(ExitCode.VERIFY_FAILED)
    assert "no prune event in the chain records that checkpoint" in result.err


def test_prune_keeps_a_session_that_straddles_the_boundary(env, cli):
    moment = {"now": days_ago(120)}
    straddler = open_recorder(env.config(), wall_clock=lambda: moment["now"])
    straddler.started({"pod": "long"})
    done = open_recorder(env.config(), wall_clock=lambda: days_ago(110))
    done.started({"pod": "short"})
    done.finished("ok", 0, None)
    moment["now"] = days_ago(0)
    straddler.finished("ok", 0, None)  # ends now: kept, and so is everything recorded after its start
    result = cli("sessions", "prune", "--older-than", "90d")
    assert "removed 0 session(s)" in result.out
    assert len(cli("sessions", "list", "-o", "json").json()["sessions"]) == 2
    assert cli("sessions", "verify").code == 0


def test_prune_removes_a_crashed_session(env, cli):
    import socket

    from kdebug.sessions.schema import format_timestamp
    from kdebug.sessions.store import boot_id

    gone = {
        "session_id": "20250101-000000-crash1",
        "status": "running",
        "hostname": socket.gethostname(),
        "boot_id": boot_id(),
        "pid": 2**22 + 1,
        "process_start": 1,
        "pod": "web",
    }
    with SessionStore(env.db, create=True) as store:
        store.append("session.start", gone["session_id"], gone, format_timestamp(days_ago(120)))
    assert cli("sessions", "show", "20250101", "-o", "json").json()["session"]["status"] == "interrupted"
    result = cli("sessions", "prune", "--older-than", "90d")
    assert "removed 1 session(s)" in result.out
    assert cli("sessions", "verify").code == 0


def test_following_the_corrupt_store_hint_lets_recording_start_afresh(env, record_session):
    record_session()
    env.db.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError) as failure:
        open_recorder(env.config())
    for command in failure.value.hint.split(": ", 1)[1].split(" && "):
        _mv, source, target = command.split()
        Path(source).rename(target)
    fresh = record_session()
    with SessionStore(env.db, create=False) as store:
        assert [r["session_id"] for r in store.list_sessions(SessionQuery())] == [fresh.session_id]


def test_truncated_database_is_one_line_with_a_way_out(env, cli):
    ts = "2026-01-01T00:00:00.000Z"
    with SessionStore(env.db, create=True) as store:
        store.append_many(
            [("session.start", f"20260101-000000-{i:06d}", {"pod": "p" * 300}, ts) for i in range(400)]
        )
    for leftover in env.db.parent.glob("sessions.db-*"):
        leftover.unlink()
    os.truncate(env.db, env.db.stat().st_size // 2)
    result = cli("sessions", "verify")
    assert result.code == STORE_ERROR
    assert "is corrupt" in result.err and "Traceback" not in result.err


def test_many_processes_creating_the_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Turning a new database to WAL races between first writers; none of them may fail as 'busy'."""
    code = (
        "import sys, time\n"
        "from kdebug.sessions.store import SessionStore\n"
        "while time.time() < float(sys.argv[2]): pass\n"  # start together
        "SessionStore(__import__('pathlib').Path(sys.argv[1])).close()\n"
    )
    failures = []
    for attempt in range(2):
        db = tmp_path / f"sessions-{attempt}.db"
        go = f"{time.time() + 0.8:.3f}"
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(db), go], stderr=subprocess.PIPE, text=True)
            for _ in range(8)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                failures.append(err.strip().splitlines()[-1])
    assert failures == []
