"""`kdebug sessions list|show|replay|export|head` through the real entry point."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from kdebug.cli.main import main
from kdebug.errors import ExitCode

COLOURED = [b"\x1b]0;title\x07\x1b[1;32mroot@web\x1b[0m:/# ", b"ls /proc/1/root\r\n", b"bin  etc\r\n\x1b[6n"]


@pytest.fixture
def mixed(env, record_session):
    """Four sessions: two pods, two users, ok/failed, one started three hours ago."""
    earlier = datetime.now(UTC) - timedelta(hours=3)
    return {
        "old_web": record_session(wall_clock=lambda: earlier, fields={"pod": "web"}),
        "api_bob": record_session(fields={"pod": "api", "kube_user": "bob"}),
        "web_failed": record_session(fields={"pod": "web"}, status="failed", exit_code=3),
        "other_ns": record_session(fields={"namespace": "shop", "pod": "web"}),
    }


def ids(result) -> list[str]:
    return [record["session_id"] for record in result.json()["sessions"]]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], ["other_ns", "web_failed", "api_bob", "old_web"], id="all-newest-first"),
        pytest.param(["--pod", "web", "-n", "demo"], ["web_failed", "old_web"], id="pod-and-namespace"),
        pytest.param(["--user", "bob"], ["api_bob"], id="user"),
        pytest.param(["--status", "failed"], ["web_failed"], id="status"),
        pytest.param(["--since", "1h"], ["other_ns", "web_failed", "api_bob"], id="since"),
        pytest.param(["--since", "2h30m"], ["other_ns", "web_failed", "api_bob"], id="since-combined-units"),
        pytest.param(["--since", "0.5d"], ["other_ns", "web_failed", "api_bob", "old_web"], id="since-days"),
        pytest.param(["--until", "1h"], ["old_web"], id="until"),
        pytest.param(["--limit", "2"], ["other_ns", "web_failed"], id="limit"),
    ],
)
def test_list_filters(mixed, cli, args, expected):
    result = cli("sessions", "list", "-o", "json", *args)
    assert result.code == 0, result.err
    assert ids(result) == [mixed[name].session_id for name in expected]


def test_list_json_has_a_version_and_whole_records(mixed, cli):
    data = cli("sessions", "list", "-o", "json", "--user", "bob").json()
    assert data["version"] == 1
    assert data["sessions"][0]["kube_user"] == "bob" and data["sessions"][0]["status"] == "ok"


def test_list_table_is_plain_text_when_not_a_terminal(mixed, cli):
    lines = cli("sessions", "list", "--pod", "api").out.splitlines()
    assert lines[0].split()[:2] == ["SESSION", "STARTED"]
    assert lines[1].startswith(mixed["api_bob"].session_id) and "bob" in lines[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--since", "yesterday"], "--since: invalid time"),
        pytest.param(["--until", "1h 30m"], "--until: invalid time"),
        pytest.param(["--status", "weird"], "--status: must be one of"),
        pytest.param(["-o", "yaml"], "--output: must be one of"),
    ],
)
def test_list_bad_input_is_one_usage_line(env, cli, args, message):
    result = cli("sessions", "list", *args)
    assert result.code == int(ExitCode.USAGE)
    assert message in result.err and "Traceback" not in result.err


def test_list_status_running_then_interrupted(env, record_session, cli):
    from kdebug.sessions.recorder import open_recorder

    live = open_recorder(env.config())
    live.started({"pod": "web"})
    record_session()
    assert ids(cli("sessions", "list", "-o", "json", "--status", "running")) == [live.session_id]
    live.finished("interrupted", None, "lost connection")
    assert ids(cli("sessions", "list", "-o", "json", "--status", "interrupted")) == [live.session_id]
    assert ids(cli("sessions", "list", "-o", "json", "--status", "running")) == []


def test_show_strips_control_sequences(env, record_session, cli):
    rec = record_session(output=COLOURED)
    result = cli("sessions", "show", rec.session_id)
    assert result.code == 0
    transcript = result.out.split("--- transcript (plain text) ---\n", 1)[1]
    assert transcript == "root@web:/# ls /proc/1/root\nbin  etc\n"


def test_show_accepts_a_unique_prefix(env, record_session, cli):
    rec = record_session(suffix=lambda n: "q" * n)
    result = cli("sessions", "show", rec.session_id[:-3])
    assert result.code == 0 and rec.session_id in result.out


def test_show_ambiguous_prefix_is_a_usage_error(env, record_session, cli):
    first, second = record_session(), record_session()
    common = first.session_id[:8]
    assert second.session_id.startswith(common)
    result = cli("sessions", "show", common)
    assert result.code == int(ExitCode.USAGE) and "ambiguous" in result.err


def test_show_unknown_session_is_not_found(env, record_session, cli):
    record_session()
    result = cli("sessions", "show", "1999")
    assert result.code == int(ExitCode.NOT_FOUND) and "no session matches '1999'" in result.err


def test_show_json_is_the_record(env, record_session, cli):
    rec = record_session(reason="INC-1")
    session = cli("sessions", "show", rec.session_id, "-o", "json").json()["session"]
    assert (session["session_id"], session["reason"]) == (rec.session_id, "INC-1")


def run_binary(capsysbinary, *args: str) -> tuple[int, bytes]:
    capsysbinary.readouterr()
    code = main(list(args))
    return code, capsysbinary.readouterr().out


@pytest.mark.parametrize("command", [["replay", "--max-idle", "0"], ["show", "--raw"]], ids=["replay", "raw"])
def test_transcript_round_trip_is_byte_exact(env, record_session, capsysbinary, command):
    chunks = [*COLOURED, b"caf\xc3", b"\xa9 \xff\xfe\r\n"]
    rec = record_session(output=chunks)
    code, out = run_binary(capsysbinary, "sessions", command[0], rec.session_id, *command[1:])
    assert code == 0
    assert out == b"".join(chunks)


def test_replay_of_a_session_without_transcript_says_so(env, record_session, cli):
    env.configure(allow_no_record=True)
    rec = record_session(record=False)
    result = cli("sessions", "replay", rec.session_id)
    assert (result.code, result.out) == (0, "")
    assert "no transcript" in result.err


def test_export_jsonl_lines_carry_hashes_in_chain_order(mixed, cli):
    result = cli("sessions", "export", "--pod", "web", "-n", "demo", "--format", "jsonl")
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [line["session"] for line in lines] == [mixed["old_web"].session_id] * 2 + [
        mixed["web_failed"].session_id
    ] * 2
    assert all(len(line["hash"]) == 64 and len(line["prev"]) == 64 for line in lines)


def test_export_asciicast_of_one_session_is_its_file(mixed, capsysbinary):
    code, out = run_binary(capsysbinary, "sessions", "export", "--user", "bob", "--format", "asciicast")
    assert code == 0
    assert out == mixed["api_bob"].transcript_path.read_bytes()


def test_export_asciicast_of_several_sessions_needs_a_directory(mixed, cli, tmp_path):
    assert cli("sessions", "export", "--format", "asciicast").code == int(ExitCode.USAGE)
    result = cli("sessions", "export", "--format", "asciicast", "--dir", str(tmp_path / "casts"))
    assert result.code == 0
    assert len(list((tmp_path / "casts").glob("*.cast"))) == 4


def test_head_json_names_the_last_event(mixed, cli):
    head = cli("sessions", "head", "-o", "json").json()
    assert head["seq"] == 8 and head["hash"] == cli("sessions", "head").out.strip()


@pytest.mark.parametrize("command", ["list", "show", "replay", "export", "prune", "verify", "head"])
def test_every_command_has_help_with_examples(cli, command):
    result = cli("sessions", command, "--help")
    assert result.code == 0
    assert "Examples" in result.out


def test_sessions_alone_shows_its_commands(cli):
    result = cli("sessions")
    assert result.code == 0
    assert all(name in result.out for name in ("list", "show", "replay", "verify", "head"))
