"""The typer application: registers commands, and is the only place that turns errors into exit codes.

Command modules import their heavy dependencies (the Kubernetes client, the registry code, rich) with
`kdebug.lazy.lazy_module`, so a help screen or a usage error loads none of them.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer
import typer.main

import kdebug
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
    rich_markup_mode=None,  # click's plain help: rich would be loaded for every help screen
    suggest_commands=False,  # click already says "Did you mean ...?"
    context_settings={"help_option_names": ["-h", "--help"]},
)

VERSION_OPTIONS = ("--version", "-V")


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"kdebug {kdebug.__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        *VERSION_OPTIONS,
        callback=_print_version,
        is_eager=True,
        help="Print kdebug's version and exit.",
    ),
) -> None:
    pass


# Command name -> module in kdebug.cli defining it, in the order `kdebug --help` lists them.
COMMAND_MODULES = {
    "attach": "attach",
    "inspect": "inspect",
    "doctor": "doctor",
    "sessions": "sessions",
    "demo": "demo",
    "run": "run",
    "runbook": "runbook",
}
_registered: set[str] = set()


def _register(argv: list[str]) -> None:
    """Register the command `argv` names, or every command (help, no command, an unknown name).

    Each module defines `register(app)`. A run that names its command imports only that module, and
    typer then builds only that command's click parameters; `--version` needs none.
    """
    if argv[:1] and argv[0] in VERSION_OPTIONS:
        return
    name = argv[0] if argv and argv[0] in COMMAND_MODULES else None
    for command, module_name in COMMAND_MODULES.items():
        if (name is None or command == name) and module_name not in _registered:
            _registered.add(module_name)
            importlib.import_module(f"kdebug.cli.{module_name}").register(app)


def _print_error(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    sys.stderr.flush()


def invoke(command: click.Command, args: list[str]) -> int:
    """Run a click command on `args` and return its exit code; errors become one line on stderr."""
    try:
        result = command.main(args=args, prog_name="kdebug", standalone_mode=False)
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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this; `run` exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _register(args)
    # a group even when only one command is registered
    return invoke(typer.main.get_group(app), args)


def run() -> None:
    sys.exit(main())
