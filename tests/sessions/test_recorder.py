"""The recorder: what a record holds for ok, failed and interrupted sessions; policy; caps; flushing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kdebug.errors import UsageError
from kdebug.sessions.asciicast import output_bytes, read_cast
from kdebug.sessions.recorder import open_recorder, parse_size
from kdebug.sessions.store import SessionStore

CHILD = Path(__file__).with_name("recording_child.py")


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        time.sleep(0.02)


def read_record(env, session_id: str) -> dict:
    with SessionStore(env.db, create=False) as store:
        return store.record(session_id)


def test_ok_session_record_holds_caller_and_local_fields(env, record_session):
    rec = record_session(fields={"pod_uid": "uid-1", "debug_image": "busybox:1.36.1"}, reason="INC-7")
    record = read_record(env, rec.session_id)
    assert (record["status"], record["exit_code"], record["reason"]) == ("ok", 0, "INC-7")
    assert (record["pod"], record["pod_uid"], record["debug_image"]) == ("web", "uid-1", "busybox:1.36.1")
    assert record["pid"] == os.getpid() and record["hostname"] and record["os_user"]
    assert record["started_at"] <= record["ended_at"]


def test_ok_session_record_holds_transcript_size_and_hash(env, record_session):
    rec = record_session(output=[b"abc\r\n"])
    record = read_record(env, rec.session_id)
    data = (env.transcripts / record["transcript"]).read_bytes()
    import hashlib

    assert record["transcript_size"] == len(data)
    assert record["transcript_sha256"] == hashlib.sha256(data).hexdigest()


def test_failed_session_keeps_error_and_exit_code(env, record_session):
    rec = record_session(status="failed", exit_code=67, error="image pull failed: nope:1")
    record = read_record(env, rec.session_id)
    assert (record["status"], record["exit_code"], record["error"]) == (
        "failed",
        67,
        "image pull failed: nope:1",
    )


def test_update_fields_appear_in_the_record(env):
    rec = open_recorder(env.config())
    rec.started({"pod": "web"})
    rec.update({"ephemeral_container": "kdebug-x1y2z", "mystery": 1})
    rec.finished("ok", 0, None)
    record = read_record(env, rec.session_id)
    assert record["ephemeral_container"] == "kdebug-x1y2z"
    assert record["extra"] == {"mystery": 1}


def test_context_manager_marks_an_exception_failed(env):
    with pytest.raises(RuntimeError), open_recorder(env.config()) as rec:
        rec.started({"pod": "web"})
        raise RuntimeError("stream broke")
    record = read_record(env, rec.session_id)
    # an unexpected exception: its type and (capped) message, with the internal-error exit code
    assert (record["status"], record["error"]) == ("failed", "internal error: RuntimeError: stream broke")
    assert record["exit_code"] == 76


def start_child(env) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "hold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("ready "), line
    return child, line.split()[1]


def test_running_session_of_a_live_process_shows_running(env):
    child, session_id = start_child(env)
    try:
        assert read_record(env, session_id)["status"] == "running"
    finally:
        child.kill()
        child.wait(timeout=10)


def test_sigkill_leaves_an_interrupted_session_with_its_output(env, cli):
    child, session_id = start_child(env)
    transcript = env.transcripts / f"{session_id}.cast"
    wait_for(lambda: b"before the end" in transcript.read_bytes())
    child.kill()
    child.wait(timeout=10)
    shown = cli("sessions", "show", session_id)
    assert shown.code == 0
    assert "interrupted" in shown.out and "before the end" in shown.out
    listed = cli("sessions", "list", "-o", "json", "--status", "interrupted").json()["sessions"]
    assert [record["session_id"] for record in listed] == [session_id]


def test_sigint_ends_the_session_as_interrupted(env):
    child, session_id = start_child(env)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=10) == 130
    record = read_record(env, session_id)
    assert (record["status"], record["exit_code"], "ended_at" in record) == ("interrupted", 130, True)


def test_transcript_is_flushed_within_a_second_without_more_output(env):
    rec = open_recorder(env.config())
    rec.started({"pod": "web"})
    rec.output(b"visible soon")
    path = rec.transcript_path
    assert path is not None
    started = time.monotonic()
    wait_for(lambda: b"visible soon" in path.read_bytes(), timeout=5)
    elapsed = time.monotonic() - started
    rec.finished("ok", 0, None)
    assert elapsed < 1.0


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b"caf\xc3", b"\xa9 \xe2\x82", b"\xac"], id="multibyte-split-across-chunks"),
        pytest.param([b"\xff\xfe raw bytes \x00\x1b[2J"], id="invalid-utf8-and-controls"),
        pytest.param([b"\xf0\x9f", b"\x98", b"\x80!"], id="emoji-in-three-chunks"),
    ],
)
def test_transcript_keeps_exactly_the_output_bytes(env, record_session, chunks):
    rec = record_session(output=chunks)
    _header, events = read_cast(rec.transcript_path)
    assert output_bytes(events) == b"".join(chunks)


def ticking_clock(step: float = 1.0) -> Callable[[], float]:
    """A monotonic clock that advances `step` seconds per reading (events never coalesce)."""
    ticks = iter(range(1_000_000))
    return lambda: next(ticks) * step


def test_multibyte_character_is_never_split_between_events(env, record_session):
    rec = record_session(output=[b"caf\xc3", b"\xa9!"], clock=ticking_clock())
    _header, events = read_cast(rec.transcript_path)
    assert [event.data for event in events if event.code == "o"] == ["caf", "\u00e9!"]


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0.001, [(1.0, "abc")]), (1.0, [(1.0, "a"), (2.0, "b"), (3.0, "c")])],
    ids=["close-chunks-share-an-event", "distant-chunks-keep-their-times"],
)
def test_output_events_keep_timing_to_five_milliseconds(env, record_session, step, expected):
    rec = record_session(output=[b"a", b"b", b"c"], clock=ticking_clock(step))
    _header, events = read_cast(rec.transcript_path)
    scale = 1.0 / step
    assert [(round(e.time * scale), e.data) for e in events if e.code == "o"] == [
        (round(t), data) for t, data in expected
    ]


def test_resize_before_output_sets_the_header_size(env):
    rec = open_recorder(env.config())
    rec.started({"pod": "web"})
    rec.resize(132, 43)
    rec.output(b"x")
    rec.resize(80, 24)
    rec.finished("ok", 0, None)
    header, events = read_cast(rec.transcript_path)
    assert (header["width"], header["height"]) == (132, 43)
    assert [(e.code, e.data) for e in events if e.code == "r"] == [("r", "80x24")]


@pytest.mark.parametrize(
    ("steps", "size", "resizes"),
    [
        ([b"# ", (80, 24)], (80, 24), []),
        ([(132, 43), b"x", (132, 43)], (132, 43), []),
        ([b"x", (100, 30), (100, 30), b"y", (100, 30)], (80, 24), ["100x30"]),
    ],
    ids=["initial-size-after-first-output", "sigwinch-without-a-change", "new-size-reported-again"],
)
def test_resize_to_the_current_size_records_nothing(env, steps, size, resizes):
    rec = open_recorder(env.config())
    rec.started({"pod": "web"})
    for step in steps:
        if isinstance(step, bytes):
            rec.output(step)
        else:
            rec.resize(*step)
    rec.finished("ok", 0, None)
    header, events = read_cast(rec.transcript_path)
    assert (header["width"], header["height"]) == size
    assert [e.data for e in events if e.code == "r"] == resizes


@pytest.mark.parametrize(("record_input", "expected"), [(False, []), (True, ["ls\r"])], ids=["off", "on"])
def test_input_is_recorded_only_with_record_input(env, record_input, expected):
    rec = open_recorder(env.config(), record_input=record_input)
    rec.started({"pod": "web"})
    rec.input(b"ls\r")
    rec.finished("ok", 0, None)
    _header, events = read_cast(rec.transcript_path)
    assert [e.data for e in events if e.code == "i"] == expected
    assert read_record(env, rec.session_id)["record_input"] is record_input


def test_output_past_the_cap_is_dropped_with_a_marker(env, record_session):
    env.configure(transcript_cap=4096)
    chunks = [b"y" * 1000 for _ in range(10)]
    rec = record_session(output=chunks)
    record = read_record(env, rec.session_id)
    _header, events = read_cast(rec.transcript_path)
    assert record["transcript_truncated"] is True
    assert record["transcript_size"] <= 4096
    assert record["transcript_dropped_bytes"] == 10000 - len(output_bytes(events))
    assert events[-1].code == "m" and "truncated" in events[-1].data


def test_output_under_the_cap_is_not_truncated(env, record_session):
    env.configure(transcript_cap="1MiB")
    rec = record_session(output=[b"z" * 10000])
    assert read_record(env, rec.session_id)["transcript_truncated"] is False


@pytest.mark.parametrize(
    ("text", "size"),
    [("64MiB", 64 * 1024**2), ("10MB", 10_000_000), ("4096", 4096), ("512k", 512 * 1024)],
    ids=["mib", "mb", "bytes", "k"],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-1", "0"], ids=["word", "negative", "zero"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(UsageError, match="transcript_cap"):
        parse_size(text)


@pytest.mark.parametrize("reason", [None, "", "   "], ids=["none", "empty", "blank"])
def test_require_reason_refuses_before_opening_the_store(env, reason):
    env.configure(require_reason=True)
    with pytest.raises(UsageError, match="--reason"):
        open_recorder(env.config(), reason=reason)
    assert not env.db.exists()


def test_require_reason_accepts_a_reason(env, record_session):
    env.configure(require_reason=True)
    rec = record_session(reason="INC-9")
    assert read_record(env, rec.session_id)["reason"] == "INC-9"


def test_no_record_is_refused_unless_config_allows_it(env):
    with pytest.raises(UsageError, match="allow_no_record"):
        open_recorder(env.config(), record=False)
    assert not env.db.exists()


def test_no_record_is_itself_recorded_without_a_transcript(env, record_session):
    env.configure(allow_no_record=True)
    rec = record_session(record=False, output=[b"secret stuff"])
    record = read_record(env, rec.session_id)
    assert (record["recorded"], record["status"], "transcript" in record) == (False, "ok", False)
    assert list(env.transcripts.iterdir()) == []


def test_session_ids_sort_by_time_and_use_the_injected_suffix(env):
    moments = iter([datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)])
    first = open_recorder(env.config(), wall_clock=lambda: next(moments), suffix=lambda n: "a" * n)
    second = open_recorder(env.config(), wall_clock=lambda: next(moments), suffix=lambda n: "b" * n)
    assert (first.session_id, second.session_id) == ("20260102-030405-aaaaaa", "20260102-030406-bbbbbb")
    assert sorted([second.session_id, first.session_id])[0] == first.session_id


def test_sink_lines_carry_hashes_and_the_last_is_the_head(env, record_session, cli, tmp_path):
    sink = tmp_path / "audit.jsonl"
    env.configure(sinks=[{"type": "file", "path": str(sink)}])
    record_session()
    record_session()
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(line["prev"] == before["hash"] for before, line in zip(lines, lines[1:], strict=False))
    assert lines[-1]["hash"] == cli("sessions", "head").out.strip()


def test_stdout_sink_writes_json_lines(env, capsys):
    env.configure(sinks=["stdout"])
    rec = open_recorder(env.config())
    rec.started({"pod": "web"})
    rec.finished("ok", 0, None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["kind"] for line in lines] == ["session.start", "session.end"]
    assert all(len(line["hash"]) == 64 for line in lines)


def test_bad_sink_type_is_a_usage_error(env):
    env.configure(sinks=[{"type": "kafka"}])
    with pytest.raises(UsageError, match="unknown sink type"):
        open_recorder(env.config())


def test_finished_without_started_still_leaves_a_whole_record(env):
    rec = open_recorder(env.config(), reason="INC-3")
    rec.finished("failed", 65, 'pods "nope" not found')
    record = read_record(env, rec.session_id)
    assert (record["status"], record["exit_code"], record["reason"]) == ("failed", 65, "INC-3")
    assert record["started_at"] <= record["ended_at"]


def test_recorder_can_be_driven_from_another_thread(env):
    import threading

    rec = open_recorder(env.config())
    rec.started({"pod": "web"})
    worker = threading.Thread(target=lambda: (rec.output(b"from a thread"), rec.update({"node": "n1"})))
    worker.start()
    worker.join(timeout=10)
    rec.finished("ok", 0, None)
    assert read_record(env, rec.session_id)["node"] == "n1"


def test_an_error_kind_as_status_is_recorded_as_failed_with_the_kind(env):
    rec = open_recorder(env.config())
    rec.started({"pod": "web"})
    rec.finished("timeout", None, "debug container did not start within 2m")
    record = read_record(env, rec.session_id)
    assert (record["status"], record["error_kind"]) == ("failed", "timeout")


def test_a_different_caller_session_id_is_kept_beside_the_recorders(env):
    rec = open_recorder(env.config())
    rec.started({"session_id": "0123abcd", "pod": "web"})
    rec.finished("ok", 0, None)
    record = read_record(env, rec.session_id)
    assert (record["session_id"], record["extra"]) == (rec.session_id, {"caller_session_id": "0123abcd"})
