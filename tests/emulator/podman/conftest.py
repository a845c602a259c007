"""Fixtures for the podman runtime: a real registry with the test images and one Harness (harness.py)
for the session. Everything skips with the reason when podman cannot run here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kdebug_emulator.localregistry import start_registry
from kdebug_emulator.podman_images import push_podman_images, tools_present
from kdebug_emulator.runtimes.podman import podman_usable
from tests.emulator.podman.harness import Harness


@pytest.fixture(scope="session")
def podman_ok() -> None:
    usable, reason = podman_usable()
    if not usable:
        pytest.skip(f"podman cannot run here: {reason}")
    present, missing = tools_present()
    if not present:
        pytest.skip(missing)


@pytest.fixture(scope="session")
def registry_host(podman_ok: None) -> Iterator[str]:
    registry = start_registry()
    try:
        push_podman_images(registry.host)
        yield registry.host
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def harness(registry_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("podman-runtime"), registry_host)
    try:
        yield h
    finally:
        h.close()
