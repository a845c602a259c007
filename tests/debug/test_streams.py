"""Piped stdin and interrupts, through the `kdebug` console script in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess

from kdebug.errors import ExitCode
from tests.fixtures.kdebug_cli import KDEBUG, ephemeral_names, run_console


def test_piped_stdin_reaches_command(kubeconfig):
    result = run_console(["attach", "web", "--", "cat"], kubeconfig, stdin=b"one\ntwo\n")
    assert (result.code, result.out) == (0, "one\ntwo\n")


def test_piped_script_runs_in_debug_shell(kubeconfig):
    result = run_console(["attach", "web"], kubeconfig, stdin=b"echo from-shell\nexit 5\n")
    assert (result.code, result.out) == (5, "from-shell\n")


def test_piped_stdin_container_reads_eof(demo_emulator, kubeconfig):
    result = run_console(["attach", "web", "--", "wc", "-l"], kubeconfig, stdin=b"a\nb\nc\n")
    assert result.out.strip() == "3"
    stored = demo_emulator.get("pods", "demo", "web")
    added = stored["spec"]["ephemeralContainers"][0]
    assert (added["stdin"], added.get("stdinOnce"), added["tty"]) == (True, True, False)


def test_sigint_while_waiting_exits_130_with_one_line(demo_emulator, kubeconfig):
    demo_emulator.api.runtime.create_delay = 30  # keep the debug container in ContainerCreating
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    process = subprocess.Popen(
        [KDEBUG, "attach", "web", "--", "true"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        demo_emulator.wait_for(lambda: ephemeral_names(demo_emulator, "demo", "web") != [], timeout=15)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == ExitCode.INTERRUPTED
    last_line = err.decode().splitlines()[-1]
    assert last_line.startswith("error: interrupted while waiting for debug container kdebug-")
    assert b"Traceback" not in err


def test_insecure_skip_tls_verify_works_without_warnings(kubeconfig, tmp_path):
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority", None)
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"]["insecure-skip-tls-verify"] = True
    insecure = tmp_path / "insecure"
    insecure.write_text(yaml.safe_dump(config))
    result = run_console(["attach", "web", "--", "cat"], insecure, stdin=b"through websocket\n")
    assert (result.code, result.out) == (0, "through websocket\n")
    assert "Warning" not in result.err


def _with_tls_server_name(kubeconfig, tmp_path, name: str):
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["tls-server-name"] = name
    path = tmp_path / f"tls-{name}"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tls_server_name_is_the_name_the_certificate_is_checked_for(kubeconfig, tmp_path):
    config = _with_tls_server_name(kubeconfig, tmp_path, "localhost")
    result = run_console(["attach", "web", "--", "echo", "ok"], config)
    assert (result.code, result.out) == (0, "ok\n")


def test_a_tls_server_name_the_certificate_does_not_name_fails_the_handshake(kubeconfig, tmp_path):
    config = _with_tls_server_name(kubeconfig, tmp_path, "other.example")
    result = run_console(["attach", "web", "--", "true"], config)
    assert result.code == ExitCode.UNREACHABLE
    assert "TLS handshake failed" in result.err.splitlines()[-1]
