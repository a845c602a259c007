"""Fixtures for the attach tests (the shared ones, kubeconfig and run_kdebug, are in tests/fixtures/)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from tests.debug.helpers import TcpProxy


@pytest.fixture
def proxied_kubeconfig(demo_emulator, kubeconfig, tmp_path):
    """A kubeconfig that reaches the emulator through a TcpProxy; yields (path, proxy)."""
    proxy = TcpProxy(urlsplit(demo_emulator.url).port)
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path = tmp_path / "proxied-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield path, proxy
    proxy.cut()
