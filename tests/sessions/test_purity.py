"""Pure session modules load without the CLI or Kubernetes stacks."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["kdebug.sessions.chain", "kdebug.sessions.schema", "kdebug.sessions.recorder"]
)
def test_session_modules_do_not_import_heavy_stacks(module):
    code = (
        f"import sys, {module}; "
        "print(','.join(m for m in ('kubernetes', 'typer', 'rich', 'aiohttp') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""


def test_chain_hash_covers_every_field():
    from kdebug.sessions.chain import make_event

    base = dict(
        seq=1, prev="0" * 64, ts="2026-01-01T00:00:00.000Z", kind="session.start", session="s", data={"a": 1}
    )
    digests = {make_event(**base).hash}
    for name, value in [
        ("seq", 2),
        ("prev", "1" * 64),
        ("ts", "x"),
        ("kind", "session.end"),
        ("session", "t"),
        ("data", {"a": 2}),
    ]:
        digests.add(make_event(**{**base, name: value}).hash)
    assert len(digests) == 7


def test_docs_describe_every_record_field():
    from pathlib import Path

    from kdebug.sessions.schema import RECORD_FIELDS

    docs = (Path(__file__).parents[2] / "docs" / "audit.md").read_text()
    missing = [name for name in RECORD_FIELDS if f"| `{name}` |" not in docs]
    assert missing == []


LIVE = {"hostname": "here", "boot_id": "boot-1", "pid": 42, "process_start": 1000, "status": "running"}


@pytest.mark.parametrize(
    ("record", "start_of_pid", "heartbeat_age", "expected"),
    [
        pytest.param(LIVE, 1000, None, "running", id="same-host-process-alive"),
        pytest.param(LIVE, None, None, "interrupted", id="same-host-process-gone"),
        pytest.param(LIVE, 2000, None, "interrupted", id="same-host-pid-reused"),
        pytest.param({**LIVE, "boot_id": "boot-0"}, 1000, None, "interrupted", id="same-host-rebooted"),
        pytest.param({**LIVE, "hostname": "there"}, None, 30.0, "running", id="other-host-fresh-heartbeat"),
        pytest.param(
            {**LIVE, "hostname": "there"}, None, 600.0, "interrupted", id="other-host-stale-heartbeat"
        ),
        pytest.param({**LIVE, "status": "ok"}, None, None, "ok", id="ended-sessions-keep-their-status"),
    ],
)
def test_derive_status(record, start_of_pid, heartbeat_age, expected):
    from kdebug.sessions.schema import derive_status

    status = derive_status(
        record,
        local_host="here",
        local_boot_id="boot-1",
        process_start_of=lambda pid: start_of_pid if pid == 42 else None,
        heartbeat_age=heartbeat_age,
    )
    assert status == expected
