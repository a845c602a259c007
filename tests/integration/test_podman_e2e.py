"""On real containers (`kdebug demo` with the podman runtime): the user ids and PIDs the emulator's
process runtime cannot show. Skipped where podman cannot run containers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import namespace, target_pod

KDEBUG = [sys.executable, "-m", "kdebug"]


def _podman_usable() -> bool:
    from kdebug_emulator.runtimes.podman import podman_usable

    return podman_usable()[0]


pytestmark = [
    pytest.mark.podman,
    pytest.mark.skipif(not _podman_usable(), reason="podman cannot run containers here"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("podman-demo")
    kubeconfig = home / "kubeconfig"
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    env.pop("KDEBUG_CONFIG", None)
    command = [*KDEBUG, "demo", "--runtime", "podman", "--write-kubeconfig", str(kubeconfig)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # the demo prints the export line on stdout once the kubeconfig is written and the server serves
        line = process.stdout.readline() if process.stdout else ""
        assert Path(kubeconfig).exists(), f"kdebug demo wrote no kubeconfig: {line!r}"
        yield {**env, "KUBECONFIG": str(kubeconfig)}
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


def kdebug(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KDEBUG, *args], capture_output=True, text=True, env=env, timeout=120)


def test_nonroot_target_is_debugged_as_65532(demo):
    result = kdebug(demo, "attach", "api", "-n", "demo", "--", "id")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("uid=65532(nonroot) gid=65532(nonroot)")


def test_nonroot_debugger_reads_the_targets_files(demo):
    result = kdebug(demo, "attach", "api", "-n", "demo", "--", "ls", "/proc/1/root/app")
    assert (result.returncode, result.stdout) == (0, "/proc/1/root/app\n"), result.stderr


@pytest.mark.parametrize("pod", ["web", "api"])
def test_in_a_copy_the_target_root_points_at_the_app_not_the_pause_process(demo, pod):
    script = (
        'tr "\\000" " " </proc/1/cmdline; echo; '
        'tr "\\000" " " </proc/$KDEBUG_TARGET_PID/cmdline; echo; ls "$KDEBUG_TARGET_ROOT"'
    )
    result = kdebug(demo, "attach", pod, "-n", "demo", "--copy", "--", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    pid1, target, *files = result.stdout.splitlines()
    assert pid1.startswith("/catatonit")  # PID 1 of a copy is the pause process
    assert target.startswith("/app")
    assert "app" in files


def kubectl_create(env: dict[str, str], *objects: dict) -> None:
    for obj in objects:
        done = subprocess.run(
            ["kubectl", "create", "--validate=false", "-f", "-"],
            input=json.dumps(obj),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def wait_running(env: dict[str, str], ns: str) -> None:
    done = subprocess.run(
        ["kubectl", "wait", "pod/target", "-n", ns, "--for=condition=Ready", "--timeout=60s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr


RUNS_AS = {  # (level, target) -> what `id` prints in the debugger (uid, gid)
    ("privileged", "root"): ("0", "0"),
    ("privileged", "nonroot"): ("65532", "65532"),
    ("baseline", "root"): ("0", "0"),
    ("baseline", "nonroot"): ("65532", "65532"),
    ("restricted", "root"): ("1000", "1000"),
    ("restricted", "nonroot"): ("65532", "65532"),
}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on PATH")
@pytest.mark.parametrize(
    ("level", "user"),
    [
        pytest.param(level, user, id=f"{level}-{user}")
        for level in ("privileged", "baseline", "restricted")
        for user in ("root", "nonroot")
    ],
)
def test_auto_profile_runs_as_the_right_user_and_reads_the_target(demo, level, user):
    ns = f"podman-{level}-{user}"
    kubectl_create(demo, namespace(ns, level), target_pod(ns, level, user))
    wait_running(demo, ns)
    script = "id -u; id -g; ls /proc/1/root >/dev/null && echo readable"
    result = kdebug(demo, "attach", "target", "-n", ns, "--", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    uid, gid, readable = result.stdout.split()
    assert (uid, gid) == RUNS_AS[(level, user)]
    assert readable == "readable"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on PATH")
def test_an_interactive_session_leaves_no_process_in_the_targets_pid_namespace(demo):
    import pexpect

    # A pod of its own, whose PID 1 never reaps (like many single-binary apps): anything kdebug left
    # behind would show in its process list, as a process or a zombie.
    ns = "pidns"
    pod = target_pod(ns, "privileged", "root")
    pod["spec"]["containers"][0].update(image="docker.io/library/busybox:1.36.1", command=["sleep", "999999"])
    kubectl_create(demo, namespace(ns, "privileged"), pod)
    wait_running(demo, ns)
    shell = pexpect.spawn(
        KDEBUG[0],
        [*KDEBUG[1:], "attach", "target", "-n", ns, "--no-reuse"],
        env=demo,
        timeout=60,
        dimensions=(30, 120),
    )
    shell.expect("/proc/1/root")
    shell.sendline("echo read''y")
    shell.expect("ready")
    shell.sendline("exit 0")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0
    listing = kdebug(demo, "attach", "target", "-n", ns, "--", "ps", "-o", "pid,stat,args")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split(None, 2) for line in listing.stdout.splitlines()[1:]]
    others = [row for row in rows if row[0] != "1" and "ps -o pid,stat,args" not in row[-1]]
    assert others == []  # no watchdog, no sleep, no zombie left by the ended session
