"""Shared fixtures: a running emulator per test (empty or with the demo objects), a plain API client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdebug_emulator import Emulator

# fixtures shared across folders live in tests/fixtures/ and are registered here, once; never_harm judges
# every request kdebug sends to an emulator during the session (pytester: to test that plugin)
pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.pods",
    "tests.fixtures.never_harm",
    "pytester",
]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """A started emulator with only the default namespaces and the node; stopped after the test."""
    emu = Emulator(workdir=tmp_path / "emulator")
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def demo_emulator(tmp_path: Path) -> Iterator[Emulator]:
    """A started emulator holding the demo namespace's objects (pods web, api, deployment shop)."""
    emu = Emulator(demo=True, workdir=tmp_path / "demo-emulator")
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


class ApiClient:
    """Plain HTTPS requests to the emulator as one user (bearer token), for exact status/body checks."""

    def __init__(self, emu: Emulator, user: str = "admin"):
        import requests

        self.emu = emu
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.session.verify = str(emu.ca_path)
        self.session.headers["Authorization"] = f"Bearer {emu.token(user)}"

    def as_user(self, user: str) -> ApiClient:
        return ApiClient(self.emu, user)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.emu.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs)

    def patch(
        self,
        path: str,
        body: Any,
        content_type: str = "application/strategic-merge-patch+json",
        **kwargs: Any,
    ) -> Any:
        import json

        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("PATCH", path, data=data, headers={"Content-Type": content_type}, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=body, **kwargs)


@pytest.fixture
def api(emulator: Emulator) -> ApiClient:
    return ApiClient(emulator)
