"""kdebug's idle-guarded shell (spec.IDLE_GUARD_SCRIPT) run by a real BusyBox in a real pty, the way a
container runtime starts a tty container: the exit status passes through, Ctrl-C reaches the shell, an
idle shell is hung up, and nothing kdebug started is left for the target's PID 1 to inherit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kdebug.debug import spec

BUSYBOX = shutil.which("busybox")
PROBE = Path(__file__).with_name("probe.py")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed")
PROMPT = r"\n\$ "


@pytest.fixture
def busybox_bin(tmp_path: Path) -> Path:
    """A directory of BusyBox applets like a distroless :debug image's /busybox."""
    directory = tmp_path / "busybox"
    directory.mkdir()
    for applet in ("sh", "tty", "stat", "date", "sleep", "kill", "cat"):
        (directory / applet).symlink_to(BUSYBOX)
    return directory


def run_guarded(
    busybox_bin: Path,
    steps: list[list[str]],
    *,
    ctty: bool = True,
    idle_timeout: int = 3600,
    shell: str | None = None,
) -> dict[str, Any]:
    probe_spec = {
        "script": spec.IDLE_GUARD_SCRIPT,
        "shell": [shell or str(busybox_bin / "sh")],
        "ctty": ctty,
        "env": {
            "HOME": str(busybox_bin),  # no rc files
            "PATH": f"{busybox_bin}:/usr/bin:/bin",
            "KDEBUG_IDLE_TIMEOUT": str(idle_timeout),
            "KDEBUG_IDLE_CHECK": "1",
        },
        "steps": steps,
    }
    done = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(probe_spec)], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_the_exit_status_passes_and_nothing_is_left_behind(busybox_bin):
    steps = [["expect", PROMPT], ["send", "echo hi"], ["expect", "hi"], ["send", "exit 3"]]
    result = run_guarded(busybox_bin, steps)
    assert (result["exit"], result["orphans"]) == (3, [])


def test_ctrl_c_interrupts_the_foreground_command_and_the_shell_lives_on(busybox_bin):
    # Output of the line means the line editor has given the terminal back (Ctrl-C is a signal again);
    # the probe waits at most 15 s for each expectation: only an interrupted `sleep 30` gives the prompt.
    steps = [
        ["expect", PROMPT],
        # the child prints once it runs, so the Ctrl-C cannot land between the echo and the sleep
        ["send", "sh -c 'echo run\"\"ning; sleep 30'"],
        ["expect", "running\r\n"],
        ["ctrl-c"],
        ["expect", PROMPT],
        ["send", "echo still-here"],
        ["expect", "still-here\r\n"],
        ["send", "exit 0"],
    ]
    result = run_guarded(busybox_bin, steps)
    assert (result["exit"], result["orphans"]) == (0, [])


def test_an_idle_shell_is_hung_up_and_leaves_nothing_behind(busybox_bin):
    result = run_guarded(busybox_bin, [["expect", PROMPT]], idle_timeout=1)
    assert (result["exit"], result["orphans"]) == (128 + 1, [])  # SIGHUP


def test_without_a_controlling_terminal_the_shell_still_runs(busybox_bin):
    steps = [["expect", PROMPT], ["send", "echo hi"], ["expect", "hi"], ["send", "exit 5"]]
    result = run_guarded(busybox_bin, steps, ctty=False)
    assert result["exit"] == 5


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_with_bash_an_idle_hang_up_prints_no_job_notices(busybox_bin):
    result = run_guarded(busybox_bin, [], idle_timeout=1, shell=shutil.which("bash"))
    assert (result["exit"], result["orphans"]) == (128 + 1, [])
    assert "while sleep" not in result["output"] and "Done" not in result["output"]
    assert "no job control" not in result["output"]
