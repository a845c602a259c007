"""`attach --copy`: debug a copy of a crash-looping pod, then delete (or keep) the copy."""

from __future__ import annotations

import pexpect
import pytest

from kdebug.debug.copy_spec import COPY_OF_LABEL, COPY_PRELUDE_NAME, COPY_TARGET_PRELUDE, SESSION_ANNOTATION
from kdebug.errors import ExitCode
from kdebug.images.catalog import load_catalog
from tests.fixtures.cluster import mutating_requests
from tests.fixtures.kdebug_cli import KDEBUG, console_env, env_of
from tests.fixtures.pods import build_pod, container

DEFAULT_DEBUG_IMAGE = load_catalog({}).busybox_image  # the shipped catalog's pinned BusyBox


def crashing_pod() -> dict:
    return build_pod(
        name="crashy",
        namespace="demo",
        labels={"app": "crashy"},
        restart_policy="Always",
        containers=[container("app", DEFAULT_DEBUG_IMAGE, command=["sh", "-c", "exit 1"])],
    )


def is_crash_looping(emulator) -> bool:
    pod = emulator.get("pods", "demo", "crashy") or {}
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if ((status.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff":
            return True
    return False


@pytest.fixture
def crashy(demo_emulator, kubeconfig) -> str:
    demo_emulator.apply(crashing_pod())
    demo_emulator.wait_for(lambda: is_crash_looping(demo_emulator), timeout=10)
    return "crashy"


def copies_of(emulator, pod: str) -> list[dict]:
    return [
        p
        for p in emulator.list("pods", "demo")
        if ((p.get("metadata") or {}).get("labels") or {}).get(COPY_OF_LABEL) == pod
    ]


def test_crash_looping_pod_suggests_copy(demo_emulator, kubeconfig, run_kdebug, crashy):
    result = run_kdebug("attach", crashy, "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.NOT_SUPPORTED
    assert "CrashLoopBackOff" in result.err
    assert "hint: debug a copy of the pod instead: kdebug attach crashy -n demo --copy" in result.err


def test_copy_runs_the_command_and_is_deleted_afterwards(demo_emulator, kubeconfig, run_kdebug, crashy):
    result = run_kdebug(
        "attach",
        crashy,
        "--copy",
        "--copy-command",
        "sleep infinity",
        "--kubeconfig",
        str(kubeconfig),
        "--",
        "echo",
        "in-the-copy",
    )
    assert (result.code, result.out) == (0, "in-the-copy\n"), result.err
    assert "kdebug: deleted the copy crashy-kdebug-" in result.err
    assert copies_of(demo_emulator, crashy) == []


def test_copy_is_kept_with_keep(demo_emulator, kubeconfig, run_kdebug, crashy):
    result = run_kdebug(
        "attach",
        crashy,
        "--copy",
        "--keep",
        "--copy-command",
        "sleep infinity",
        "--kubeconfig",
        str(kubeconfig),
        "--",
        "true",
    )
    assert result.code == 0, result.err
    (copy,) = copies_of(demo_emulator, crashy)
    assert copy["spec"]["shareProcessNamespace"] is True
    target = next(c for c in copy["spec"]["containers"] if c["name"] == "app")
    assert target["command"] == ["sleep", "infinity"]
    assert copy["metadata"]["annotations"][SESSION_ANNOTATION]


def test_copy_never_touches_the_original_pod(demo_emulator, kubeconfig, run_kdebug, crashy):
    run_kdebug(
        "attach",
        crashy,
        "--copy",
        "--copy-command",
        "sleep infinity",
        "--kubeconfig",
        str(kubeconfig),
        "--",
        "true",
    )
    touched = [(r["method"], r["path"]) for r in mutating_requests(demo_emulator)]
    assert [method for method, _ in touched] == ["POST", "DELETE"]
    assert all("/pods/crashy-kdebug-" in path or path.endswith("/pods") for _, path in touched)


def test_copy_without_copy_command_still_attaches(demo_emulator, kubeconfig, run_kdebug, crashy):
    result = run_kdebug("attach", crashy, "--copy", "--kubeconfig", str(kubeconfig), "--", "echo", "ok")
    assert (result.code, result.out) == (0, "ok\n"), result.err
    assert copies_of(demo_emulator, crashy) == []


def test_copy_debugger_does_not_claim_pid_1_is_the_target(demo_emulator, kubeconfig, run_kdebug, crashy):
    # PID 1 of a copy is the pause process: the prelude finds the target (proved on podman in
    # test_podman_e2e.py); here: the debugger runs behind it and no static /proc/1/root is set
    run_kdebug("attach", crashy, "--copy", "--keep", "--kubeconfig", str(kubeconfig), "--", "echo", "ok")
    (copy,) = copies_of(demo_emulator, crashy)
    debugger = copy["spec"]["containers"][-1]
    assert debugger["command"][:4] == ["sh", "-c", COPY_TARGET_PRELUDE, COPY_PRELUDE_NAME]
    assert debugger["command"][4:] == ["echo", "ok"]
    assert "KDEBUG_TARGET_ROOT" not in env_of(debugger)


@pytest.mark.parametrize(
    "flags",
    [pytest.param(["--copy-command", "sleep 1"], id="copy-command"), pytest.param(["--keep"], id="keep")],
)
def test_copy_flags_without_copy_are_usage_errors(demo_emulator, kubeconfig, run_kdebug, flags):
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", *flags, "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.USAGE
    assert len(demo_emulator.requests) == before


@pytest.fixture
def interactive_copy(kubeconfig, tmp_path, crashy):
    env = {**console_env(tmp_path, kubeconfig), "TERM": "xterm"}
    child = pexpect.spawn(
        KDEBUG,
        ["attach", crashy, "--copy", "--copy-command", "sleep infinity"],
        env=env,
        dimensions=(24, 80),
        timeout=20,
        encoding="utf-8",
        codec_errors="replace",
    )
    yield child
    if child.isalive():
        child.terminate(force=True)


@pytest.mark.parametrize(
    ("answer", "kept"),
    [pytest.param("n", True, id="no-keeps"), pytest.param("", False, id="default-deletes")],
)
def test_interactive_session_asks_whether_to_delete_the_copy(
    demo_emulator, interactive_copy, crashy, answer, kept
):
    interactive_copy.expect("# ")
    interactive_copy.sendline("exit")
    interactive_copy.expect(r"delete the copy crashy-kdebug-\w+\? \[Y/n\]")
    interactive_copy.sendline(answer)
    interactive_copy.expect(pexpect.EOF)
    assert len(copies_of(demo_emulator, crashy)) == (1 if kept else 0)
