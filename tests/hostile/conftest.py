"""Fixtures of the hostile-input tests: scriptable HTTP servers on 127.0.0.1 (tests/hostile/server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.server import HostileServer


@pytest.fixture
def hostile_server() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture
def second_server() -> Iterator[HostileServer]:
    """Another loopback origin (another port): a token service or redirect target that is not the registry."""
    server = HostileServer()
    yield server
    server.close()
