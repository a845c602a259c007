"""The random parts of a session: container-name suffixes and session ids (kept out of the pure spec)."""

from __future__ import annotations

import secrets
import uuid

from kdebug.debug.spec import SUFFIX_ALPHABET

SUFFIX_LENGTH = 5


def new_suffix() -> str:
    """Five characters like Kubernetes' rand.String, for container and copy names."""
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))


def new_session_id() -> str:
    return uuid.uuid4().hex
