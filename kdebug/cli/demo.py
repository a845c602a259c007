"""`kdebug demo` (placeholder until the emulator work lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo() -> None:
        """Start a local demo cluster."""
        from kdebug.errors import NotSupportedError

        raise NotSupportedError("demo is not built yet")
