"""The typer application: registers commands, and is the only place that turns errors into exit codes.

Command modules import their heavy dependencies (the Kubernetes client, the registry code, rich) with
`kdebug.lazy.lazy_module`, so a help screen or a usage error loads none of them.
"""

from __future__ import annotations

import importlib
import re
import sys

import click
import typer
import typer.main
from typer.core import TyperGroup

import kdebug
from kdebug.console.sanitize import terminal_safe
from kdebug.errors import ExitCode, InternalError, KdebugError, capped

# Command name -> (module in kdebug.cli defining it, its summary in `kdebug --help`), in help order.
# The summary is the first line of the command's own help (tests/cli/test_help.py keeps them equal).
COMMANDS = {
    "attach": (
        "attach",
        "Open a shell (or run COMMAND) in an ephemeral debug container beside TARGET's container.",
    ),
    "inspect": (
        "inspect",
        "Show each container's image, its classification with evidence, and the debug image kdebug picks.",
    ),
    "doctor": (
        "doctor",
        "Check that kdebug can debug here (and TARGET), with a one-line fix for each problem.",
    ),
    "sessions": (
        "sessions",
        "The audit log of debug sessions: records, transcripts, and a hash chain that shows tampering.",
    ),
    "demo": (
        "demo",
        "Start a local demo cluster (an API emulator on 127.0.0.1) and debug a shell-less pod in it.",
    ),
    "run": (
        "run",
        "Run COMMAND beside TARGET's container in each pod (no TTY); results as text, JSON or JSON lines.",
    ),
    "runbook": ("runbook", "Run or check runbook files (YAML lists of diagnostic steps)."),
}
VERSION_OPTIONS = ("--version", "-V")


class LazyCommandsGroup(TyperGroup):
    """Lists every command from COMMANDS, but only the one being run is imported and built.

    click's documented pattern for lazily loaded subcommands: `kdebug --help` shows the summaries
    without importing a command module or building its parameters.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        registered = super().get_command(ctx, cmd_name)
        if registered is not None or cmd_name not in COMMANDS:
            return registered
        return click.Command(cmd_name, short_help=COMMANDS[cmd_name][1])  # a listing entry only

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            raise click.exceptions.NoSuchCommand(name, possibilities=list(COMMANDS), ctx=ctx)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="kdebug",
    cls=LazyCommandsGroup,
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


_registered: set[str] = set()


def _register(argv: list[str]) -> None:
    """Register the command `argv` names (none for help, --version or an unknown name).

    Each module defines `register(app)`; typer then builds only that command's click parameters.
    """
    module_name = COMMANDS[argv[0]][0] if argv and argv[0] in COMMANDS else None
    if module_name is not None and module_name not in _registered:
        _registered.add(module_name)
        importlib.import_module(f"kdebug.cli.{module_name}").register(app)


def _print_error(message: str, hint: str | None = None) -> None:
    # Messages quote servers and stored records: no control character reaches the terminal raw.

    # ... and no quoted text makes the line longer than MAX_ERROR_CHARS.
    sys.stderr.write(f"error: {terminal_safe(capped(message), one_line=True)}\n")
    if hint:
        sys.stderr.write(f"hint: {terminal_safe(capped(hint), one_line=True)}\n")
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
    except click.exceptions.NoArgsIsHelpError as exc:  # `kdebug` or `kdebug runbook` alone
        sys.stdout.write(exc.ctx.get_help() + "\n")
        return int(ExitCode.USAGE)
    except click.exceptions.Abort:
        _print_error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except click.UsageError as exc:
        prefix = f"{exc.ctx.command_path}: " if exc.ctx else ""
        _print_error(prefix + exc.format_message(), _usage_hint(exc))
        return int(ExitCode.USAGE)
    except click.ClickException as exc:
        _print_error(exc.format_message())
        return int(ExitCode.USAGE)
    except KeyboardInterrupt:
        _print_error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug: one line and its own exit code, never a traceback
        error = InternalError.wrapping(exc)
        _print_error(error.message, error.hint)
        return int(error.exit_code)
    return int(result or 0) if isinstance(result, int) else 0


def _usage_hint(exc: click.UsageError) -> str | None:
    """The likeliest fix of a usage error, where click's own words do not say it."""
    extra = re.match(r"Got unexpected extra arguments? \((.*)\)$", exc.format_message())
    if extra is None or exc.ctx is None or exc.ctx.command_path.split()[-1:] != ["attach"]:
        return None
    target = exc.ctx.params.get("target") or "TARGET"
    words = terminal_safe(f"{target} -- {extra.group(1)}", one_line=True)
    return f"a command to run goes after --: {exc.ctx.command_path} {words}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this; `run` exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _register(args)
    return invoke(typer.main.get_group(app), args)


def run() -> None:
    sys.exit(main())
