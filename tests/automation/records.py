"""Readers for what a `kdebug run` left in the session store: the audit record and its transcript."""

from __future__ import annotations

from typing import Any

from kdebug.config import load_config
from kdebug.sessions.store import SessionStore, db_path_from_config


def audit_record(session_id: str) -> dict[str, Any]:
    with SessionStore(db_path_from_config(load_config()), create=False) as store:
        return store.record(session_id)


def transcript_text(record: dict[str, Any]) -> str:
    path = db_path_from_config(load_config()).parent / "transcripts" / record["transcript"]
    return path.read_text(encoding="utf-8")
