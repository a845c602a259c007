"""The random parts of a session: container-name suffixes and session ids (kept out of the pure spec)."""

from __future__ import annotations

from kdebug.debug.spec import SUFFIX_ALPHABET

SUFFIX_LENGTH = 5


def new_suffix() -> str:
    """Five characters like Kubernetes' rand.String, for container and copy names."""
    import secrets  # here, not at the top: a measurable share of every start-up

    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))


def new_session_id() -> str:
    import uuid  # imports `platform`: kept off the start-up path

    return uuid.uuid4().hex
