"""Help screens: fast (no client, parser or renderer imported) and with examples."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = (
    "import sys\n"
    "from kdebug.cli.main import main\n"
    "code = main({argv!r})\n"
    "heavy = ('kubernetes', 'websocket', 'aiohttp', 'rich', 'kdebug.kube.client', 'kdebug.debug.session')\n"
    "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
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
    from kdebug.cli.main import main

    assert main(["attach", "--help"]) == 0
    out = capsys.readouterr().out
    assert "kdebug attach deploy/shop -n demo -- echo ok" in out
    assert "/proc/1/root" in out


def test_pure_modules_import_no_client_or_cli_libraries():
    probe = (
        "import sys\n"
        "import kdebug.kube.targets, kdebug.debug.spec, kdebug.kube.channels\n"
        "import kdebug.durations, kdebug.models\n"
        "heavy = ('kubernetes', 'typer', 'rich', 'websocket')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "HEAVY []"
