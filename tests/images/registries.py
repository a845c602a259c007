"""What the image tests share besides fixtures: the skip mark for a missing registry, the private
registry's credentials and their Docker config form, and a free port."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kdebug_emulator import localregistry

needs_registry = pytest.mark.skipif(
    not localregistry.available(), reason="Debian's docker-registry is not installed"
)

AUTH_USER, AUTH_PASSWORD = "puller", "pull-pass-123"


def basic_auths(host: str) -> dict[str, Any]:
    return {host: {"auth": base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()}}


def unused_port() -> int:
    return localregistry.free_port()
