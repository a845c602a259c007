"""Fixtures for `kdebug run` / `kdebug runbook` tests: an isolated audit store and config, a demo
kubeconfig, an in-process CLI runner, and a reader for the audit records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kdebug.cli.main import main
from kdebug_emulator import Emulator


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def by_pod(self) -> dict[str, dict[str, Any]]:
        return {item["pod"]: item for item in self.json()}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config file and session store (never the user's)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = tmp_path / "config.yaml"
    config.write_text("sessions: {}\n")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))
    return tmp_path


def all_running(emulator: Emulator, namespace: str) -> bool:
    for pod in emulator.list("pods", namespace):
        statuses = pod.get("status", {}).get("containerStatuses") or []
        if not statuses or not all("running" in (s.get("state") or {}) for s in statuses):
            return False
    return True


@pytest.fixture
def kubeconfig(demo_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An admin kubeconfig for the demo emulator, namespace `demo`, exported as KUBECONFIG."""
    path = demo_emulator.write_kubeconfig(tmp_path / "kubeconfig", namespace="demo")
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo"), timeout=15)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def run_kdebug(capfd: pytest.CaptureFixture[str]):
    """`kdebug ARGS` in-process through the real entry point."""

    def run(*args: str) -> Result:
        code = main(list(args))
        captured = capfd.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def ephemeral_names(emulator: Emulator, namespace: str, pod: str) -> list[str]:
    stored = emulator.get("pods", namespace, pod) or {}
    return [c["name"] for c in stored.get("spec", {}).get("ephemeralContainers") or []]


def audit_record(session_id: str) -> dict[str, Any]:
    from kdebug.config import load_config
    from kdebug.sessions.store import SessionStore, db_path_from_config

    with SessionStore(db_path_from_config(load_config()), create=False) as store:
        return store.record(session_id)


def transcript_text(record: dict[str, Any]) -> str:
    from kdebug.config import load_config
    from kdebug.sessions.store import db_path_from_config

    path = db_path_from_config(load_config()).parent / "transcripts" / record["transcript"]
    return path.read_text(encoding="utf-8")
