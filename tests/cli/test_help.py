"""Help screens: fast (no client, parser or renderer imported) and with examples."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kdebug.cli.main import COMMANDS, main
from kdebug.errors import ExitCode

PROBE = (
    "import sys\n"
    "from kdebug.cli.main import main\n"
    "code = main({argv!r})\n"
    "heavy = ('kubernetes', 'websocket', 'aiohttp', 'rich', 'kdebug.kube.client', 'kdebug.debug.session')\n"
    "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
)

SUMMARY_PROBE = (
    "import typer.main\n"
    "from kdebug.cli import main\n"
    "main._register([{name!r}])\n"
    "command = typer.main.get_group(main.app).get_command(None, {name!r})\n"
    "print(command.help.strip().splitlines()[0])\n"
)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["attach", "--help"], ["run", "--help"], ["sessions", "list", "--help"], ["attach"]],
    ids=["kdebug", "kdebug attach", "kdebug run", "kdebug sessions list", "a usage error"],
)
def test_help_does_not_import_heavy_modules(argv):
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in done.stdout.splitlines()[-1]


def test_attach_help_shows_examples(capsys):
    assert main(["attach", "--help"]) == 0
    out = capsys.readouterr().out
    assert "kdebug attach deploy/shop -n demo -- echo ok" in out
    assert "/proc/1/root" in out


def test_pure_modules_import_no_client_or_cli_libraries():
    probe = (
        "import sys\n"
        "import kdebug.kube.targets, kdebug.debug.spec, kdebug.kube.channels\n"
        "import kdebug.durations, kdebug.models, kdebug.lazy\n"
        "heavy = ('kubernetes', 'typer', 'rich', 'websocket')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "HEAVY []"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_summary_is_the_first_line_of_the_commands_help(name: str) -> None:
    """`kdebug --help` lists commands from COMMANDS without importing them: the summaries must not drift."""
    done = subprocess.run(
        [sys.executable, "-c", SUMMARY_PROBE.format(name=name)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == COMMANDS[name][1]


def test_top_level_help_imports_no_command_module() -> None:
    probe = (
        "import sys\n"
        "from kdebug.cli.main import main\n"
        "main(['--help'])\n"
        "commands = [m for m in sys.modules if m.startswith('kdebug.cli.') and m != 'kdebug.cli.main']\n"
        "print('LOADED', sorted(commands))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "LOADED []"
    assert "attach    Open a shell (or run COMMAND)" in done.stdout


def test_no_command_prints_the_help_and_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == ExitCode.USAGE
    out = capsys.readouterr().out
    assert out.startswith("Usage: kdebug [OPTIONS] COMMAND [ARGS]...")
    assert "runbook   Run or check runbook files" in out


def test_a_mistyped_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["atach", "web"]) == ExitCode.USAGE
    assert capsys.readouterr().err == "error: kdebug: No such command 'atach'. Did you mean 'attach'?\n"
