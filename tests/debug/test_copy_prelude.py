"""The copy's target prelude (copy_spec.COPY_TARGET_PRELUDE) run by a real BusyBox `sh` over a fake /proc.

The fake is a directory of PID entries, each with a `cmdline` and a `root` link (to / for the debugger's
own processes, elsewhere for another container's); the script's /proc is pointed at it. A process that
exits while the prelude looks is an entry without files, or a `cmdline` FIFO the test answers and then
removes the entry behind, so each race happens at one known step, every run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kdebug.debug.copy_spec import COPY_PRELUDE_NAME, COPY_TARGET_PRELUDE
from kdebug.errors import ExitCode

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed")
REPORT = 'echo "pid=$KDEBUG_TARGET_PID root=$KDEBUG_TARGET_ROOT"'
PAUSE = "/catatonit\0-P\0"


class FakeProc:
    def __init__(self, base: Path):
        self.path = base / "proc"
        self.elsewhere = base / "rootfs"  # another container's root
        self.path.mkdir()
        self.elsewhere.mkdir()

    def add(self, pid: int, cmdline: str, *, ours: bool = False) -> Path:
        entry = self.path / str(pid)
        entry.mkdir()
        (entry / "cmdline").write_text(cmdline)
        (entry / "root").symlink_to("/" if ours else self.elsewhere)
        return entry

    def gone(self, pid: int) -> None:
        """Listed, but exited since: nothing in it can be opened any more."""
        (self.path / str(pid)).mkdir()

    def answered_once(self, pid: int, cmdline: str, then: Callable[[Path], None]) -> threading.Thread:
        """A target whose cmdline the prelude reads exactly once as `cmdline`; `then` changes the entry
        before that read ends (the test thread blocks until the prelude opens the FIFO)."""
        entry = self.add(pid, "")
        fifo = entry / "cmdline"
        fifo.unlink()
        os.mkfifo(fifo)

        def answer() -> None:
            with fifo.open("w") as writer:
                writer.write(cmdline)
                writer.flush()
                then(entry)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        return thread

    def root_of(self, pid: int) -> str:
        return f"{self.path}/{pid}/root"


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path)


def run_prelude(proc: FakeProc, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert BUSYBOX is not None
    script = COPY_TARGET_PRELUDE.replace("/proc", str(proc.path))
    argv = [BUSYBOX, "sh", "-c", script, COPY_PRELUDE_NAME, BUSYBOX, "sh", "-c", REPORT]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **(env or {})}
    )


def outcome(done: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return done.returncode, done.stdout, done.stderr


def test_the_lowest_foreign_process_is_the_target(proc):
    proc.add(1, PAUSE)
    proc.add(9, "sh\0-c\0prelude\0", ours=True)
    proc.add(42, "/app\0")
    proc.add(57, "/app\0--worker\0")
    assert outcome(run_prelude(proc)) == (0, f"pid=42 root={proc.root_of(42)}\n", "")


def test_a_process_that_exited_since_the_listing_is_skipped_without_a_word(proc):
    # the flake: the open error of the vanished entry's cmdline escaped `2>/dev/null` (redirections go
    # left to right) and, in a logs-only session, reached kdebug's stdout before the command's output
    proc.add(1, PAUSE)
    proc.gone(7)
    proc.add(42, "/app\0")
    assert outcome(run_prelude(proc)) == (0, f"pid=42 root={proc.root_of(42)}\n", "")


def test_a_target_that_exits_once_seen_is_not_pointed_at(proc):
    proc.add(1, PAUSE)
    answering = proc.answered_once(42, "/app\0", then=shutil.rmtree)
    code, out, err = outcome(run_prelude(proc))
    answering.join(timeout=5)
    assert not answering.is_alive()
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert err.startswith("kdebug: no target process in this copy") and err.count("\n") == 1, err


def test_a_target_still_being_started_is_waited_for(proc):
    def started(entry: Path) -> None:
        (entry / "started").write_text("/app\0")
        (entry / "started").replace(entry / "cmdline")

    proc.add(1, PAUSE)
    answering = proc.answered_once(42, "runc\0init\0", then=started)
    done = run_prelude(proc)
    answering.join(timeout=5)
    assert outcome(done) == (0, f"pid=42 root={proc.root_of(42)}\n", "")


def test_no_target_in_a_copy_says_so_on_one_stderr_line_and_stops(proc):
    proc.add(1, PAUSE)
    proc.add(9, "sh\0-c\0prelude\0", ours=True)
    code, out, err = outcome(run_prelude(proc))
    assert (code, out) == (ExitCode.NOT_FOUND, "")  # the command did not run
    assert err.startswith("kdebug: no target process in this copy") and err.count("\n") == 1, err
    assert "--copy-command" in err


def test_without_a_pause_process_as_pid_1_nothing_is_guessed(proc):
    # not a pod's shared PID namespace (the emulator runs a copy's containers as host processes): a
    # process with another root is someone else's, not the target
    proc.add(1, "/sbin/init\0", ours=True)
    proc.add(42, "/catatonit\0-P\0")
    assert outcome(run_prelude(proc)) == (0, "pid= root=\n", "")


def test_a_pid_set_by_the_runtime_wins(proc):
    proc.add(1, PAUSE)
    proc.add(42, "/app\0")
    done = run_prelude(proc, {"KDEBUG_TARGET_PID": "57"})
    assert outcome(done) == (0, f"pid=57 root={proc.root_of(57)}\n", "")
