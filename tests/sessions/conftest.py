"""Fixtures for the session tests: an isolated config + store per test, a CLI runner, a session builder."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdebug.cli.main import main
from kdebug.config import load_config
from kdebug.sessions.recorder import Recorder, open_recorder


@dataclass
class Env:
    root: Path
    config_path: Path

    @property
    def db(self) -> Path:
        return self.root / "data" / "kdebug" / "sessions.db"

    @property
    def transcripts(self) -> Path:
        return self.db.parent / "transcripts"

    def configure(self, **sessions: Any) -> None:
        self.config_path.write_text(yaml.safe_dump({"sessions": sessions}))

    def config(self) -> dict[str, Any]:
        return load_config()

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(statement, params).fetchall()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config_path = tmp_path / "config.yaml"
    config_path.write_text("sessions: {}\n")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config_path))
    return Env(tmp_path, config_path)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


DEFAULT_FIELDS = {"namespace": "demo", "pod": "web", "container": "app", "kube_user": "alice"}


@pytest.fixture
def record_session(env: Env) -> Iterator[Callable[..., Recorder]]:
    """Record one whole session: fields, output chunks, then finished(status, exit_code, error)."""
    recorders: list[Recorder] = []

    def record(
        *,
        fields: dict[str, Any] | None = None,
        output: list[bytes] = (b"hello\r\n",),  # type: ignore[assignment]
        status: str = "ok",
        exit_code: int | None = 0,
        error: str | None = None,
        **options: Any,
    ) -> Recorder:
        rec = open_recorder(env.config(), **options)
        recorders.append(rec)
        rec.started({**DEFAULT_FIELDS, **(fields or {})})
        for chunk in output:
            rec.output(chunk)
        rec.finished(status, exit_code, error)
        return rec

    yield record
