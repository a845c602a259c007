"""Hostile local files and hostile server text (issue 13, items 3, 9 and part of 11).

Server answers come over a real socket: the emulator, or `HostileApi` below (a plain-HTTP API server
that answers every request with one scripted status and body). Local attacks are forged store files:
records whose hashes are recomputed (the chain is not keyed, so a local attacker can do that), rows
that are not JSON, a foreign SQLite file, a directory in place of a transcript.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdebug.cli.main import main
from kdebug.config import load_config
from kdebug.console.progress import ProgressRenderer
from kdebug.errors import ExitCode, StoreError
from kdebug.sessions.recorder import open_recorder
from kdebug.sessions.store import SessionStore
from tests.fixtures.kdebug_cli import all_running

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # writes "echo pwned" to the clipboard
CLEAR = "\x1b[2J"
FAKE_PROMPT = "\r\n$ "
HOSTILE = f'pods "web" is forbidden{OSC52}{CLEAR}{FAKE_PROMPT}\x9b31m'
PASSWORD = "s3cret-pass"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def kdebug_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated XDG dirs and config; returns the config file path."""
    for name in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    config = tmp_path / "config.yaml"
    config.write_text("sessions: {}\n")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))
    return config


@pytest.fixture
def run(capfd: pytest.CaptureFixture[str], kdebug_dirs: Path) -> Any:
    def run_kdebug(*args: str) -> Result:
        capfd.readouterr()
        code = main(list(args))
        captured = capfd.readouterr()
        return Result(code, captured.out, captured.err)

    return run_kdebug


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "kdebug" / "sessions.db"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_line_error(result: Result) -> None:
    assert "Traceback" not in result.err, result.err
    assert result.err.startswith("error: "), result.err
    assert len([line for line in result.err.splitlines() if line.startswith("error: ")]) == 1


def record_session(output: bytes = b"PASSWORD=hunter2\r\n", **fields: Any) -> str:
    rec = open_recorder(load_config())
    rec.started({"namespace": "demo", "pod": "web", "container": "app", **fields})
    rec.output(output)
    rec.finished("ok", 0, None)
    return rec.session_id


def forge_session(db: Path, start: dict[str, Any], *, ts: str = "2020-01-01T00:00:00.000Z") -> str:
    """Append a start and an end event with valid hashes, as a local attacker with write access can."""
    session = "20200101-000000-forged"
    with SessionStore(db) as store:
        data = {"session_id": session, "status": "running", **start}
        store.append("session.start", session, data, ts)
        store.append("session.end", session, {"status": "ok", "exit_code": 0}, ts)
    return session


# -- 1. local file permissions ------------------------------------------------------------------------
@pytest.fixture(params=[0o022, 0o000], ids=["umask 022", "umask 000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_a_new_store_is_private_whatever_the_umask(tmp_path: Path, kdebug_dirs: Path, umask: int) -> None:
    sink = tmp_path / "logs" / "audit.jsonl"
    kdebug_dirs.write_text(yaml.safe_dump({"sessions": {"sinks": [{"type": "file", "path": str(sink)}]}}))
    session = record_session()
    db = db_path(tmp_path)
    with SessionStore(db, create=False):  # a reader keeps the WAL and shared-memory files open
        files = [db, db.with_name("sessions.db-wal"), db.with_name("sessions.db-shm")]
        files += [db.parent / "transcripts" / f"{session}.cast", sink]
        assert {str(path): mode(path) for path in files} == {str(path): 0o600 for path in files}
    dirs = [db.parent, db.parent / "transcripts", sink.parent]
    assert {str(path): mode(path) for path in dirs} == {str(path): 0o700 for path in dirs}


def test_an_existing_loose_store_is_tightened(tmp_path: Path, run: Any) -> None:
    session = record_session()
    db = db_path(tmp_path)
    transcript = db.parent / "transcripts" / f"{session}.cast"
    for path in (db, transcript):
        path.chmod(0o644)
    for path in (db.parent, db.parent / "transcripts"):
        path.chmod(0o755)
    side_files = [db.with_name("sessions.db-wal"), db.with_name("sessions.db-shm")]
    with sqlite3.connect(db) as holder:  # another process keeping the WAL files, left 0644 by it
        holder.execute("SELECT count(*) FROM events").fetchall()
        for path in side_files:
            path.chmod(0o644)
        result = run("sessions", "list")
        assert [mode(path) for path in side_files] == [0o600, 0o600]
    assert result.code == 0, result.err
    assert [mode(db), mode(transcript)] == [0o600, 0o600]
    assert [mode(db.parent), mode(db.parent / "transcripts")] == [0o700, 0o700]


def test_an_existing_loose_sink_file_is_warned_about(tmp_path: Path, kdebug_dirs: Path, capfd: Any) -> None:
    sink = tmp_path / "audit.jsonl"
    sink.touch()
    sink.chmod(0o644)
    kdebug_dirs.write_text(yaml.safe_dump({"sessions": {"sinks": [str(sink)]}}))
    record_session()
    assert f"{sink} is readable by other users" in capfd.readouterr().err


def test_the_registry_cache_is_private(tmp_path: Path, umask: int) -> None:
    from kdebug.images.registry import EvidenceCache

    root = tmp_path / "cache" / "kdebug" / "registry"
    EvidenceCache(root).put_image("sha256:" + "a" * 64, {"image_config": {}})
    (entry,) = (root / "images").iterdir()
    assert [mode(root.parent), mode(root), mode(root / "images"), mode(entry)] == [0o700, 0o700, 0o700, 0o600]


# -- 2. leaks: credentials in the server URL, the client key on disk --------------------------------
class HostileApi:
    """A plain-HTTP API server on 127.0.0.1 answering every request with one status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]):
        self.status, self.body = status, json.dumps(body).encode()
        self.paths: list[str] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                api.paths.append(f"{self.command} {self.path}")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(api.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(api.body)))
                self.end_headers()
                self.wfile.write(api.body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HostileApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
            "code": code}  # fmt: skip


def write_kubeconfig(path: Path, server: str, **user: Any) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user or {"token": "t0ken"}}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u", "namespace": "demo"}}],
        "current-context": "main",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_credentials_in_the_server_url_stay_out_of_errors(tmp_path: Path, run: Any) -> None:
    with HostileApi(401, status_body(401, "Unauthorized", "Unauthorized")) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://kdebug:{PASSWORD}@127.0.0.1:{api.port}")
        result = run("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert api.paths, "the hostile server was never asked"
    assert result.code == ExitCode.UNREACHABLE, result.err
    assert PASSWORD not in result.err and "kdebug:" not in result.err
    assert f"http://127.0.0.1:{api.port}" in result.err


def test_credentials_in_the_server_url_stay_out_of_audit_events(
    tmp_path: Path, demo_emulator: Any, run: Any, kdebug_dirs: Path
) -> None:
    sink = tmp_path / "audit.jsonl"
    kdebug_dirs.write_text(yaml.safe_dump({"sessions": {"sinks": [str(sink)]}}))
    kubeconfig = demo_emulator.write_kubeconfig(tmp_path / "kc", namespace="demo")
    config = yaml.safe_load(kubeconfig.read_text())
    url = demo_emulator.url
    config["clusters"][0]["cluster"]["server"] = url.replace("https://", f"https://kdebug:{PASSWORD}@")
    kubeconfig.write_text(yaml.safe_dump(config))
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo"), timeout=15)
    result = run("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == 0, result.err
    listed = run("sessions", "list", "-o", "json")
    exported = run("sessions", "export", "--format", "jsonl")
    assert json.loads(listed.out)["sessions"][0]["server"] == url
    for text in (result.err, listed.out, exported.out, sink.read_text()):
        assert PASSWORD not in text


def test_the_client_key_never_outlives_a_killed_kdebug(tmp_path: Path, demo_emulator: Any) -> None:
    kubeconfig = demo_emulator.write_kubeconfig(tmp_path / "kc", namespace="demo", auth="cert")
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo"), timeout=15)
    demo_emulator.set_create_delay(None)  # the debugger never starts: kdebug waits mid-request
    patched = threading.Event()
    demo_emulator.on_request(
        lambda entry: patched.set() if entry["path"].endswith("/ephemeralcontainers") else None
    )
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "KUBECONFIG": str(kubeconfig)}
    env.update({f"XDG_{n}_HOME": str(tmp_path / n.lower()) for n in ("DATA", "CACHE", "CONFIG")})
    env.pop("KDEBUG_CONFIG", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "kdebug", "attach", "web", "--", "true"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert patched.wait(timeout=60), "kdebug never patched the pod"
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()
    assert sorted(p.name for p in tmpdir.rglob("*")) == []


def test_without_memfd_the_key_file_is_private_and_gone_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl
    import tempfile

    from kdebug.kube.client import Transport

    monkeypatch.delattr(os, "memfd_create")  # as on macOS
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[tuple[bytes, int, int]] = []

    def load_cert_chain(self: ssl.SSLContext, certfile: str, keyfile: str | None = None) -> None:
        key = Path(keyfile or certfile)
        seen.append((key.read_bytes(), mode(key), mode(key.parent)))

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", load_cert_chain)
    transport = Transport("https://k", False, None, None, None, None, dict, cert_data=b"C", key_data=b"K")
    transport.ssl_context()
    assert seen == [(b"K", 0o600, 0o700)]
    assert list(tmp_path.iterdir()) == []


# -- 3. terminal injection ----------------------------------------------------------------------------
def test_server_messages_reach_stderr_without_control_characters(tmp_path: Path, run: Any) -> None:
    with HostileApi(403, status_body(403, "Forbidden", HOSTILE)) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{api.port}")
        result = run("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.PERMISSION_DENIED, result.err
    assert not any(char in result.err for char in "\x1b\x07\r\x9b"), repr(result.err)
    assert 'error: pods "web" is forbidden\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b[2J\\x0d\\x0a$ ' in result.err


def test_sessions_list_and_show_print_forged_fields_without_control_characters(
    tmp_path: Path, run: Any
) -> None:
    record_session()  # creates the store
    forge_session(db_path(tmp_path), {"pod": f"web{CLEAR}", "reason": OSC52, "namespace": "demo\x9b2J",
                                      "extra": {"ticket\x1b[8m": "hidden\x1b[8m"}})  # fmt: skip
    outputs = [run("sessions", "list"), run("sessions", "show", "20200101")]
    outputs += [run("sessions", "list", "-o", "json"), run("sessions", "show", "20200101", "-o", "json")]
    for result in outputs:
        assert result.code == 0, result.err
        assert not any(char in result.out for char in "\x1b\x07\x9b"), repr(result.out)
    assert "\\x1b]52;c;" in outputs[0].out and "\\x1b]52;c;" in outputs[1].out


def test_progress_lines_escape_server_names() -> None:
    stream = io.StringIO()
    render = ProgressRenderer(stream)
    render("image", image=f"busybox{CLEAR}", reason=OSC52)
    render("target", pod=f"web{FAKE_PROMPT}", container="app", via=f"deployment/x{CLEAR}", namespace="demo")
    render("banner", namespace="demo", pod="web", target=OSC52, container="c", image="i", target_root="/r")
    assert not any(char in stream.getvalue() for char in "\x1b\x07\r"), repr(stream.getvalue())
    assert "\\x1b[2J" in stream.getvalue()


# -- 4. a transcript name from the database is never a path -------------------------------------------
@pytest.mark.parametrize("name", ["../../victim", "ABSOLUTE"], ids=["relative escape", "absolute path"])
def test_prune_never_deletes_a_file_a_forged_record_names(tmp_path: Path, run: Any, name: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    transcript = str(victim) if name == "ABSOLUTE" else f"../../../{victim.name}"
    session = forge_session(db_path(tmp_path), {"transcript": transcript})
    for args in (["sessions", "prune", "--older-than", "1d"], ["sessions", "show", session]):
        result = run(*args)
        assert victim.read_text() == "precious"
        assert result.code == ExitCode.STORE_ERROR, result.err
        one_line_error(result)
        assert f"session {session}" in result.err and "not a kdebug transcript name" in result.err
    verified = run("sessions", "verify")
    assert verified.code == ExitCode.VERIFY_FAILED and "not a kdebug transcript name" in verified.err


# -- 5. a foreign or damaged store, a directory for a transcript ---------------------------------------
def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path, run: Any) -> None:
    db = db_path(tmp_path)
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    before = db.read_bytes()
    result = run("sessions", "list")
    assert result.code == ExitCode.STORE_ERROR
    one_line_error(result)
    assert "not a kdebug session store" in result.err
    with pytest.raises(StoreError, match="not a kdebug session store"):
        open_recorder(load_config())  # what attach opens, before it touches the cluster
    assert db.read_bytes() == before
    assert not db.with_name("sessions.db-wal").exists()


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"kind": "session.start"}', '{"kind": "session.start", "data": 7, "seq": 2}'],
    ids=["not JSON", "a list", "no fields", "data not a mapping"],
)
def test_a_corrupt_row_is_one_line_error(tmp_path: Path, run: Any, body: str) -> None:
    session = record_session()
    with sqlite3.connect(db_path(tmp_path)) as conn:
        conn.execute("UPDATE events SET body = ? WHERE seq = 1", (body,))
    for args in (["sessions", "list"], ["sessions", "show", session], ["sessions", "export"]):
        result = run(*args)
        assert result.code == ExitCode.STORE_ERROR, (args, result.err)
        one_line_error(result)
        assert "damaged event" in result.err


def test_a_directory_in_place_of_a_transcript_is_a_verify_failure(tmp_path: Path, run: Any) -> None:
    session = record_session()
    transcript = db_path(tmp_path).parent / "transcripts" / f"{session}.cast"
    transcript.unlink()
    transcript.mkdir()
    verified = run("sessions", "verify")
    assert verified.code == ExitCode.VERIFY_FAILED, verified.err
    one_line_error(verified)
    assert "is not a readable file" in verified.err
    for args in (["sessions", "show", session], ["sessions", "export", "--format", "asciicast"]):
        shown = run(*args)
        assert shown.code == ExitCode.STORE_ERROR, shown.err
        one_line_error(shown)
