"""The typer application: registers commands, and is the only place that turns errors into exit codes.

Command modules import heavy dependencies (kubernetes, aiohttp, the emulator) inside their
functions, so `kdebug --help` stays fast.
"""

from __future__ import annotations

import sys

import click
import typer

from kdebug.errors import ExitCode, KdebugError

app = typer.Typer(
    name="kdebug",
    help=(
        "Get a shell beside a Kubernetes container that has none (scratch, distroless, Chainguard).\n\n"
        "Try it without a cluster:  kdebug demo"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _register() -> None:
    # Each module defines `register(app)`; the import is cheap (no heavy imports at module level).
    from kdebug.cli import attach, demo, doctor, inspect, sessions

    for module in (attach, inspect, doctor, sessions, demo):
        module.register(app)
    from kdebug.cli import run as run_command
    from kdebug.cli import runbook as runbook_command

    for module in (run_command, runbook_command):
        module.register(app)


def _print_error(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this; `run` exits with it)."""
    _register()
    try:
        result = app(args=argv, prog_name="kdebug", standalone_mode=False)
    except KdebugError as exc:
        _print_error(exc.message, exc.hint)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _print_error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except click.UsageError as exc:
        prefix = f"{exc.ctx.command_path}: " if exc.ctx else ""
        _print_error(prefix + exc.format_message())
        return int(ExitCode.USAGE)
    except click.ClickException as exc:
        _print_error(exc.format_message())
        return int(ExitCode.USAGE)
    except KeyboardInterrupt:
        _print_error("interrupted")
        return int(ExitCode.INTERRUPTED)
    return int(result or 0) if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
