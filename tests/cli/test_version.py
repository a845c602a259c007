"""`kdebug --version` / `-V`: the package version on stdout, exit 0, no command module loaded."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import kdebug

PROBE = (
    "import sys\n"
    "from kdebug.cli.main import main\n"
    "code = main({argv!r})\n"
    "loaded = ('kdebug.cli.attach', 'kdebug.cli.sessions', 'rich', 'yaml', 'kubernetes')\n"
    "print('LOADED', code, sorted(m for m in loaded if m in sys.modules))\n"
)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_package_version(flag: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kdebug", flag], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"kdebug {kdebug.__version__}\n", "")


def test_the_installed_distribution_has_the_same_version() -> None:
    """pyproject.toml reads the version from kdebug/__init__.py: the wheel and --version cannot drift."""
    assert importlib.metadata.version("kdebug") == kdebug.__version__


def test_version_loads_no_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=["--version"])], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "LOADED 0 []"
