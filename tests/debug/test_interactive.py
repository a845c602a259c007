"""Interactive sessions on a real pseudo-terminal (pexpect), raw mode, resize, restore."""

from __future__ import annotations

import json
import signal
import subprocess
import termios

import pexpect
import pytest

from kdebug.errors import ExitCode
from tests.debug.helpers import STTY_STATE, spawn
from tests.fixtures.kdebug_cli import KDEBUG, ephemeral_names

BANNER_END = "the target's filesystem is at /proc/1/root"


def wrapped(kubeconfig, *args: str) -> pexpect.spawn:
    """kdebug inside `sh` that prints the terminal state (stty -g) before and after, and kdebug's code."""
    script = f"stty -g; {KDEBUG} {' '.join(args)}; echo rc=$?; stty -g"
    return spawn("sh", ["-c", script], kubeconfig)


def exit_code_and_final_state(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(r"rc=(\d+)")
    code = int(child.match.group(1))
    child.expect(STTY_STATE)
    return code, child.match.group(1)


def test_shell_echo_resize_and_exit_code(kubeconfig):
    child = wrapped(kubeconfig, "attach", "web")
    child.expect(STTY_STATE)
    before = child.match.group(1)
    child.expect(BANNER_END)
    child.sendline("echo hel''lo")
    child.expect("hello")
    child.setwinsize(31, 101)
    child.sendline("stty size")
    child.expect("31 101")
    child.sendline("exit 3")
    code, after = exit_code_and_final_state(child)
    assert code == 3
    assert after == before


def test_session_starts_with_the_local_window_size(kubeconfig):
    child = spawn(KDEBUG, ["attach", "web"], kubeconfig, rows=40, cols=132)
    child.expect(BANNER_END)
    child.sendline("stty size")
    child.expect("40 132")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus == 0


def test_sigint_during_session_restores_terminal(kubeconfig):
    child = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    cooked = termios.tcgetattr(child.child_fd)
    child.expect(BANNER_END)
    child.sendline("echo rea''dy")
    child.expect("ready")
    assert termios.tcgetattr(child.child_fd)[3] & termios.ECHO == 0  # raw mode while attached
    child.kill(signal.SIGINT)
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus == ExitCode.INTERRUPTED
    assert termios.tcgetattr(child.child_fd) == cooked
    assert "Traceback" not in child.before


def test_dropped_connection_restores_terminal_and_exits_unreachable(proxied_kubeconfig):
    path, proxy = proxied_kubeconfig
    child = spawn(KDEBUG, ["attach", "web"], path)
    cooked = termios.tcgetattr(child.child_fd)
    child.expect(BANNER_END)
    child.sendline("echo rea''dy")
    child.expect("ready")
    proxy.cut()
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus == ExitCode.UNREACHABLE
    assert "connection to the cluster at" in child.before and "lost during the session" in child.before
    assert "Traceback" not in child.before
    assert termios.tcgetattr(child.child_fd) == cooked


def test_cluster_stopping_mid_session_restores_terminal(demo_emulator, kubeconfig):
    """Stopping the emulator ends the debug container (SIGTERM, then SIGKILL): kdebug reports that (143 or
    137) if it still sees it, else 69."""
    child = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    cooked = termios.tcgetattr(child.child_fd)
    child.expect(BANNER_END)
    child.sendline("echo rea''dy")
    child.expect("ready")
    demo_emulator.stop()
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus in (ExitCode.UNREACHABLE, 128 + 15, 128 + 9)
    assert "Traceback" not in child.before
    assert termios.tcgetattr(child.child_fd) == cooked


def test_reuse_attaches_to_running_debug_shell(demo_emulator, kubeconfig):
    first = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    first.expect(BANNER_END)
    first.sendline("echo fir''st")
    first.expect("first")
    first.kill(signal.SIGKILL)  # the client vanishes; the shell keeps running in the pod
    first.wait()
    [name] = ephemeral_names(demo_emulator, "demo", "web")

    second = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    second.expect(f"reusing the running debug container {name} in pod web")
    second.expect(BANNER_END)
    second.sendline("echo $KDEBUG_TARGET_ROOT")
    second.expect("/proc/1/root")
    second.sendline("exit 7")
    second.expect(pexpect.EOF)
    second.wait()
    assert second.exitstatus == 7
    assert ephemeral_names(demo_emulator, "demo", "web") == [name]


def test_no_reuse_adds_another_container(demo_emulator, kubeconfig):
    first = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    first.expect(BANNER_END)
    first.kill(signal.SIGKILL)
    first.wait()
    second = spawn(KDEBUG, ["attach", "web", "--no-reuse"], kubeconfig)
    second.expect(BANNER_END)
    second.sendline("exit")
    second.expect(pexpect.EOF)
    assert len(ephemeral_names(demo_emulator, "demo", "web")) == 2


def test_command_on_a_terminal_gets_a_tty_and_its_exit_code(kubeconfig):
    child = spawn(KDEBUG, ["attach", "web", "--", "sh", "-c", "read x; echo got-$x; exit 6"], kubeconfig)
    child.expect(BANNER_END)
    child.sendline("abc")
    child.expect("got-abc")
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus == 6


def test_terminal_input_with_redirected_output_feeds_the_shell(kubeconfig, tmp_path):
    out = tmp_path / "out.txt"
    child = spawn("sh", ["-c", f"{KDEBUG} attach web > {out}; echo rc=$?"], kubeconfig)
    child.expect(BANNER_END)
    child.sendline("echo redirected")
    child.sendline("exit 4")
    child.expect(r"rc=(\d+)")
    assert int(child.match.group(1)) == 4
    assert out.read_text() == "redirected\n"


def test_shell_left_without_input_ends_after_idle_timeout(demo_emulator, kubeconfig):
    child = spawn(KDEBUG, ["attach", "web", "--idle-timeout", "2s"], kubeconfig)
    child.expect(BANNER_END)
    child.kill(signal.SIGKILL)  # the client vanishes: no input reaches the shell any more
    child.wait()
    [name] = ephemeral_names(demo_emulator, "demo", "web")

    def debug_shell_terminated() -> bool:
        pod = demo_emulator.get("pods", "demo", "web") or {}
        statuses = pod.get("status", {}).get("ephemeralContainerStatuses") or []
        return any(s["name"] == name and "terminated" in (s.get("state") or {}) for s in statuses)

    demo_emulator.wait_for(debug_shell_terminated, timeout=20)


def _newest_session() -> dict:
    done = subprocess.run(
        [KDEBUG, "sessions", "list", "-o", "json", "--limit", "1"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["sessions"][0]


def test_a_dropped_connection_leaves_a_failed_record_with_the_output(proxied_kubeconfig):
    path, proxy = proxied_kubeconfig
    child = spawn(KDEBUG, ["attach", "web"], path)
    child.expect(BANNER_END)
    child.sendline("echo rea''dy")
    child.expect("ready")
    proxy.cut()
    child.expect(pexpect.EOF)
    child.wait()
    record = _newest_session()
    assert (record["status"], record["exit_code"]) == ("failed", ExitCode.UNREACHABLE)
    assert "lost during the session" in record["error"]
    shown = subprocess.run(
        [KDEBUG, "sessions", "show", record["session_id"]], capture_output=True, text=True, timeout=60
    )
    assert "ready" in shown.stdout  # the transcript kept what the session printed


def test_sigkill_of_kdebug_mid_session_shows_as_interrupted(demo_emulator, kubeconfig):
    child = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    child.expect(BANNER_END)
    child.sendline("echo rea''dy")
    child.expect("ready")
    child.kill(signal.SIGKILL)
    child.wait()
    record = _newest_session()
    assert record["status"] == "interrupted"  # derived: the recording process is gone
    assert record["ephemeral_container"] in ephemeral_names(demo_emulator, "demo", "web")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_sigterm_or_sighup_mid_session_restore_the_terminal_and_record_it(demo_emulator, kubeconfig, sig):
    child = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    cooked = termios.tcgetattr(child.child_fd)
    child.expect(BANNER_END)
    child.sendline("echo rea''dy")
    child.expect("ready")
    child.kill(sig)
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus == ExitCode.INTERRUPTED
    assert "Traceback" not in child.before
    assert termios.tcgetattr(child.child_fd) == cooked
    assert _newest_session()["status"] == "interrupted"
