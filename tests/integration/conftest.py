"""End-to-end fixtures: a user config file, the listed sessions, a target pod at a Pod Security level.

The demo emulator, its kubeconfig, run_kdebug and the per-test XDG directories are in tests/fixtures/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.fixtures.kdebug_cli import all_running
from tests.integration.helpers import namespace, target_pod


@pytest.fixture
def write_config(tmp_path):
    """Write the user config file ($XDG_CONFIG_HOME/kdebug/config.yaml)."""

    def write(settings: dict) -> Path:
        path = tmp_path / "config" / "kdebug" / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(settings))
        return path

    return write


@pytest.fixture
def sessions(run_kdebug):
    """The records `kdebug sessions list -o json` shows, newest first."""

    def listed(*args: str) -> list[dict]:
        result = run_kdebug("sessions", "list", "-o", "json", *args)
        assert result.code == 0, result.err
        document = json.loads(result.out)
        return document["sessions"] if isinstance(document, dict) else document

    return listed


@pytest.fixture
def place_target(demo_emulator, kubeconfig):
    def place(level: str, user: str) -> str:
        ns = f"psa-{level}"
        demo_emulator.apply(namespace(ns, level))
        demo_emulator.apply(target_pod(ns, level, user))
        demo_emulator.wait_for(lambda: all_running(demo_emulator, ns, "target"), timeout=10)
        return ns

    return place
