"""The typer application: registers commands, and is the only place that turns errors into exit codes.

Command modules import heavy dependencies (kubernetes, aiohttp, the emulator) inside their
functions, so `kdebug --help` stays fast.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

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
    suggest_commands=False,  # click already says "Did you mean ...?"
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


def _register(argv: list[str] | None = None) -> None:
    """Register the command `argv` names, or every command (help, no command, an unknown name).

    Each module defines `register(app)`. A run that names its command imports only that module, and
    typer then builds only that command's click parameters (evaluating their annotations costs about
    10 ms for all of them, on every run).
    """
    import importlib

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


def _click_group() -> click.Command:
    """The click group of the registered commands (a group even when only one is registered)."""
    import typer.main

    return typer.main.get_group(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this; `run` exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _register(args)
    try:
        result = _click_group().main(args=args, prog_name="kdebug", standalone_mode=False)
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
    code = main()
    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        sys.exit(code)  # a thread still working: the interpreter waits for it
    _exit_now(code)


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown (module and object finalisation: ~10 ms a run).

    By now every record, file, socket and terminal mode kdebug used is closed; exit handlers still
    run and the standard streams are flushed, which is all the teardown would do that matters.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`kdebug ... | head`)
            stream.flush()
    os._exit(code)
