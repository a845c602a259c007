"""`kdebug attach` (placeholder until the attach work lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("attach")
    def attach(target: str = typer.Argument(..., help="pod, pod/NAME, deploy/NAME, ...")) -> None:
        """Attach an ephemeral debug container to TARGET."""
        from kdebug.errors import NotSupportedError

        raise NotSupportedError("attach is not built yet")
