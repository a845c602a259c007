"""Every attach leaves a verifiable record and transcript that `kdebug sessions` sees."""

from __future__ import annotations

import json
import signal
import subprocess

import pexpect
import pytest

from kdebug.errors import ExitCode
from tests.fixtures.kdebug_cli import KDEBUG, console_env, env_of, ephemeral_containers


def only_session(sessions) -> dict:
    (record,) = sessions()
    return record


def test_ok_session_is_recorded_with_its_reason(kubeconfig, run_kdebug, sessions):
    result = run_kdebug(
        "attach", "web", "--kubeconfig", str(kubeconfig), "--reason", "INC-42", "--", "echo", "hello"
    )
    assert result.code == 0, result.err
    record = only_session(sessions)
    assert (record["status"], record["exit_code"], record["reason"]) == ("ok", 0, "INC-42")


def test_record_describes_target_image_and_identity(demo_emulator, kubeconfig, run_kdebug, sessions):
    run_kdebug("attach", "api", "--kubeconfig", str(kubeconfig), "--", "true")
    record = only_session(sessions)
    pod = demo_emulator.get("pods", "demo", "api")
    (container,) = ephemeral_containers(demo_emulator, "demo", "api")
    assert record["pod_uid"] == pod["metadata"]["uid"]
    assert record["ephemeral_container"] == container["name"]
    assert record["debug_image"] == container["image"]
    assert record["target_image"] == "gcr.io/distroless/base-debian12:nonroot"
    assert (record["kube_user"], record["kube_user_source"]) == ("admin", "selfsubjectreview")
    assert record["profile"] == "restricted"  # api runs as 65532:65532
    assert record["server"] == demo_emulator.url


def test_session_id_in_the_container_env_is_the_records_id(demo_emulator, kubeconfig, run_kdebug, sessions):
    run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    (container,) = ephemeral_containers(demo_emulator, "demo", "web")
    assert env_of(container)["KDEBUG_SESSION_ID"] == only_session(sessions)["session_id"]


def test_transcript_holds_the_commands_output(kubeconfig, run_kdebug, sessions):
    run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "echo", "hello")
    shown = run_kdebug("sessions", "show", only_session(sessions)["session_id"])
    assert shown.code == 0, shown.err
    assert "hello" in shown.out


def test_recorded_sessions_verify(kubeconfig, run_kdebug):
    run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "echo", "hello")
    run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "sh", "-c", "exit 3")
    verified = run_kdebug("sessions", "verify")
    assert verified.code == 0, verified.out + verified.err


def test_image_pull_failure_is_recorded_as_failed(kubeconfig, run_kdebug, sessions):
    result = run_kdebug(
        "attach",
        "web",
        "--kubeconfig",
        str(kubeconfig),
        "--image",
        "registry.kdebug.test/no/such:1",
        "--",
        "true",
    )
    assert result.code == ExitCode.START_FAILED
    record = only_session(sessions)
    assert (record["status"], record["error_kind"]) == ("failed", "start_failed")
    assert "ErrImagePull" in record["error"]


def test_remote_failure_is_recorded_with_its_exit_code(kubeconfig, run_kdebug, sessions):
    run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "sh", "-c", "exit 3")
    record = only_session(sessions)
    assert (record["status"], record["exit_code"]) == ("failed", 3)


def test_failure_before_the_container_still_leaves_a_record(kubeconfig, run_kdebug, sessions):
    result = run_kdebug("attach", "wbe", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.NOT_FOUND
    record = only_session(sessions)
    assert (record["status"], record["error_kind"], record["namespace"]) == ("failed", "not_found", "demo")


def test_sigint_during_the_session_is_recorded_as_interrupted(demo_emulator, kubeconfig, tmp_path, sessions):
    process = subprocess.Popen(
        [KDEBUG, "attach", "web", "--", "sleep", "60"],
        env=console_env(tmp_path, kubeconfig),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        demo_emulator.wait_for(
            lambda: any(
                "running" in (s.get("state") or {})
                for s in (demo_emulator.get("pods", "demo", "web") or {})
                .get("status", {})
                .get("ephemeralContainerStatuses")
                or []
            ),
            timeout=20,
        )
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert only_session(sessions)["status"] == "interrupted"


def test_a_refused_debug_image_still_records_who_and_which_pod(
    kubeconfig, run_kdebug, sessions, write_config
):
    write_config({"allowed_images": ["registry.example/only/*"]})
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.PERMISSION_DENIED
    record = only_session(sessions)
    assert (record["status"], record["kube_user"], record["pod"]) == ("failed", "admin", "web")


def test_require_reason_refuses_before_any_request(demo_emulator, kubeconfig, run_kdebug, write_config):
    write_config({"sessions": {"require_reason": True}})
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.USAGE
    assert "--reason" in result.err
    assert len(demo_emulator.requests) == before


def test_no_record_needs_the_config_to_allow_it(demo_emulator, kubeconfig, run_kdebug):
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--no-record", "--", "true")
    assert result.code == ExitCode.USAGE
    assert len(demo_emulator.requests) == before


def test_no_record_keeps_the_record_without_transcript(kubeconfig, run_kdebug, sessions, write_config):
    write_config({"sessions": {"allow_no_record": True}})
    result = run_kdebug(
        "attach", "web", "--kubeconfig", str(kubeconfig), "--no-record", "--", "echo", "secret"
    )
    assert result.code == 0, result.err
    record = only_session(sessions)
    assert record["recorded"] is False
    assert not record.get("transcript")


def test_copy_session_records_the_copy_pod(demo_emulator, kubeconfig, run_kdebug, sessions):
    run_kdebug("attach", "web", "--copy", "--kubeconfig", str(kubeconfig), "--", "true")
    assert only_session(sessions)["copy_pod"].startswith("web-kdebug-")


@pytest.fixture
def interactive(kubeconfig, tmp_path):
    """A `kdebug attach web` on a real pseudo-terminal, sharing the test's session store."""
    env = {**console_env(tmp_path, kubeconfig), "TERM": "xterm"}
    child = pexpect.spawn(
        KDEBUG,
        ["attach", "web", "--record-input"],
        env=env,
        dimensions=(24, 80),
        timeout=20,
        encoding="utf-8",
        codec_errors="replace",
    )
    yield child
    if child.isalive():
        child.terminate(force=True)


def cast_events(tmp_path, record: dict) -> list[list]:
    path = tmp_path / "data" / "kdebug" / "transcripts" / record["transcript"]
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def test_interactive_transcript_holds_terminal_output_and_input(interactive, sessions, tmp_path):
    interactive.expect("# ")
    interactive.sendline("echo marker-$((6*7))")
    interactive.expect("marker-42")
    interactive.setwinsize(30, 100)
    interactive.sendline("echo cols-$(stty size | cut -d' ' -f2)")
    interactive.expect("cols-100")
    interactive.sendline("exit")
    interactive.expect(pexpect.EOF)
    record = only_session(sessions)
    events = cast_events(tmp_path, record)
    output = "".join(data for _, kind, data in events if kind == "o")
    typed = "".join(data for _, kind, data in events if kind == "i")
    assert "marker-42" in output
    assert "echo marker-$((6*7))" in typed
    assert [data for _, kind, data in events if kind == "r"] == ["100x30"]
