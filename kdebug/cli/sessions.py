"""`kdebug sessions` (placeholder until its work lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("sessions")
    def sessions() -> None:
        """Not built yet."""
        from kdebug.errors import NotSupportedError

        raise NotSupportedError("sessions is not built yet")
