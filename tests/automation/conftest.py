"""Fixtures for `kdebug run` / `kdebug runbook` tests: a config file of their own and a kubeconfig exported
as KUBECONFIG (the shared kubeconfig, run_kdebug and XDG isolation are in tests/fixtures/)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config file (never the user's); the XDG dirs are isolated suite-wide."""
    config = tmp_path / "config.yaml"
    config.write_text("sessions: {}\n")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))
    return tmp_path


@pytest.fixture
def kubeconfig(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared demo kubeconfig, also exported as KUBECONFIG: these tests run without --kubeconfig."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return kubeconfig
