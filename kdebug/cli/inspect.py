"""`kdebug inspect` (placeholder until its work lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("inspect")
    def inspect() -> None:
        """Not built yet."""
        from kdebug.errors import NotSupportedError

        raise NotSupportedError("inspect is not built yet")
