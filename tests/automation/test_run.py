"""`kdebug run` end to end against the demo emulator (pods web, api and deployment shop's two pods)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kdebug.automation.results import RESULT_SCHEMA, schema_problems
from tests.automation.records import audit_record, transcript_text
from tests.fixtures.kdebug_cli import ephemeral_names

KDEBUG = str(Path(sys.executable).with_name("kdebug"))
BY_HOST = 'case "$HOSTNAME" in web) exit 0;; *) echo "bad $HOSTNAME" >&2; exit 3;; esac'


def test_single_pod_output_is_prefixed_with_the_pod(kubeconfig, run_kdebug):
    result = run_kdebug("run", "web", "--", "sh", "-c", "echo hello from $HOSTNAME")
    assert (result.code, result.out) == (0, "[pod/web/app] hello from web\n")


def test_several_targets_run_in_each_pod(kubeconfig, run_kdebug):
    result = run_kdebug("run", "web", "api", "-o", "json", "--", "sh", "-c", "echo $HOSTNAME")
    assert result.code == 0, result.out + result.err
    assert {pod: item["stdout"] for pod, item in result.by_pod().items()} == {"web": "web\n", "api": "api\n"}


def test_selector_with_all_runs_in_every_matching_pod(kubeconfig, demo_emulator, run_kdebug):
    shop_pods = sorted(
        p["metadata"]["name"]
        for p in demo_emulator.list("pods", "demo")
        if p["metadata"].get("labels", {}).get("app") == "shop"
    )
    result = run_kdebug("run", "-l", "app=shop", "--all", "-o", "json", "--", "true")
    assert (result.code, sorted(result.by_pod())) == (0, shop_pods)


def test_selector_without_all_runs_in_one_pod(kubeconfig, run_kdebug):
    result = run_kdebug("run", "-l", "app=shop", "-o", "json", "--", "true")
    assert len(result.json()) == 1


def test_second_run_reuses_the_toolbox(kubeconfig, demo_emulator, run_kdebug):
    first = run_kdebug("run", "web", "-o", "json", "--", "true").json()[0]
    before = ephemeral_names(demo_emulator, "demo", "web")
    second = run_kdebug("run", "web", "-o", "json", "--", "true").json()[0]
    after = ephemeral_names(demo_emulator, "demo", "web")
    assert (len(after), second["debug_container"]) == (len(before), first["debug_container"])


def test_toolbox_is_named_kdebug_tbx(kubeconfig, run_kdebug):
    item = run_kdebug("run", "web", "-o", "json", "--", "true").json()[0]
    assert item["debug_container"].startswith("kdebug-tbx-") and len(item["debug_container"]) == 16


def test_fresh_adds_a_container_running_the_command(kubeconfig, demo_emulator, run_kdebug):
    run_kdebug("run", "web", "--", "true")
    before = ephemeral_names(demo_emulator, "demo", "web")
    result = run_kdebug("run", "web", "--fresh", "-o", "json", "--", "sh", "-c", "echo fresh; exit 4")
    item = result.json()[0]
    after = ephemeral_names(demo_emulator, "demo", "web")
    assert (item["exit_code"], item["stdout"]) == (4, "fresh\n")
    assert sorted(after) == sorted([*before, item["debug_container"]])


def test_partial_failure_exits_70_and_keeps_each_exit_code(kubeconfig, run_kdebug):
    result = run_kdebug("run", "web", "api", "-o", "json", "--", "sh", "-c", BY_HOST)
    pods = result.by_pod()
    assert result.code == 70
    assert (pods["web"]["exit_code"], pods["web"]["error"]) == (0, None)
    assert (pods["api"]["exit_code"], pods["api"]["error"]["kind"], pods["api"]["stderr"]) == (
        3,
        "exit_code",
        "bad api\n",
    )


def test_stdout_and_stderr_are_kept_apart(kubeconfig, run_kdebug):
    item = run_kdebug("run", "web", "-o", "json", "--", "sh", "-c", "echo out; echo err >&2").json()[0]
    assert (item["stdout"], item["stderr"]) == ("out\n", "err\n")


def test_per_pod_timeout_reports_timeout_and_others_finish(kubeconfig, run_kdebug):
    script = 'case "$HOSTNAME" in web) echo quick;; *) sleep 60;; esac'
    result = run_kdebug("run", "web", "api", "--timeout", "3s", "-o", "json", "--", "sh", "-c", script)
    pods = result.by_pod()
    assert result.code == 70
    assert (pods["web"]["stdout"], pods["web"]["error"]) == ("quick\n", None)
    assert pods["api"]["error"]["kind"] == "timeout" and pods["api"]["duration_s"] < 20


@pytest.mark.parametrize(("limit", "kept"), [("100", 100), ("1KiB", 1024)], ids=["bytes", "kib"])
def test_output_is_capped_with_truncated_flag(kubeconfig, run_kdebug, limit, kept):
    command = ["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo 0123456789; i=$((i+1)); done"]
    item = run_kdebug("run", "web", "--max-output", limit, "-o", "json", "--", *command).json()[0]
    assert (len(item["stdout"]), item["truncated"], item["exit_code"]) == (kept, True, 0)


def test_output_under_the_cap_is_not_truncated(kubeconfig, run_kdebug):
    item = run_kdebug("run", "web", "--max-output", "100", "-o", "json", "--", "echo", "short").json()[0]
    assert (item["stdout"], item["truncated"]) == ("short\n", False)


def test_json_results_match_the_documented_schema(kubeconfig, run_kdebug):
    result = run_kdebug("run", "web", "api", "-o", "json", "--", "sh", "-c", BY_HOST)
    problems = [p for item in result.json() for p in schema_problems(item, RESULT_SCHEMA)]
    assert (len(result.json()), problems) == (2, [])


def test_jsonl_writes_one_valid_result_per_line(kubeconfig, run_kdebug):
    result = run_kdebug("run", "web", "api", "-o", "jsonl", "--", "true")
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert sorted(item["pod"] for item in lines) == ["api", "web"]
    assert [schema_problems(item, RESULT_SCHEMA) for item in lines] == [[], []]


def test_stdin_file_is_fed_to_the_command(kubeconfig, run_kdebug, tmp_path):
    data = tmp_path / "input.txt"
    data.write_text("line one\nline two\n")
    item = run_kdebug("run", "web", "--stdin-file", str(data), "-o", "json", "--", "cat").json()[0]
    assert item["stdout"] == "line one\nline two\n"


def test_script_runs_with_the_debug_shell(kubeconfig, run_kdebug, tmp_path):
    script = tmp_path / "check.sh"
    script.write_text('name="$HOSTNAME"\necho "checked $name"\nexit 5\n')
    item = run_kdebug("run", "api", "--script", str(script), "-o", "json").json()[0]
    assert (item["stdout"], item["exit_code"]) == ("checked api\n", 5)


def test_every_pod_run_is_an_audit_session(kubeconfig, run_kdebug):
    command = "echo audit-$HOSTNAME; " + BY_HOST
    result = run_kdebug("run", "web", "api", "-o", "json", "--", "sh", "-c", command)
    for item in result.json():
        record = audit_record(item["session_id"])
        assert (record["pod"], record["command"], record["exit_code"], record["ephemeral_container"]) == (
            item["pod"],
            ["sh", "-c", command],
            item["exit_code"],
            item["debug_container"],
        )
        assert f"audit-{item['pod']}" in transcript_text(record)


def test_more_pods_than_max_pods_is_a_usage_error(kubeconfig, run_kdebug):
    result = run_kdebug("run", "-l", "app=shop", "--all", "--max-pods", "1", "--", "true")
    assert result.code == 64 and "--max-pods" in result.err and result.out == ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["web"], "missing COMMAND"),
        (["--", "true"], "missing TARGET"),
        (["web", "--all", "--", "true"], "--all needs -l"),
        (["web", "-o", "yaml", "--", "true"], "-o yaml"),
        (["web", "--timeout", "soon", "--", "true"], "--timeout"),
        (["web", "--fresh", "--stdin-file", "/etc/hostname", "--", "cat"], "--fresh"),
    ],
    ids=["no-command", "no-target", "all-without-selector", "bad-format", "bad-timeout", "fresh-with-stdin"],
)
def test_usage_errors_exit_64_with_one_line(kubeconfig, run_kdebug, args, words):
    result = run_kdebug("run", *args)
    assert (result.code, words in result.err, "Traceback" in result.err) == (64, True, False)


def test_unknown_pod_is_not_found(kubeconfig, run_kdebug):
    result = run_kdebug("run", "nope", "--", "true")
    assert result.code == 65 and 'pod "nope" not found' in result.err


def test_ctrl_c_keeps_finished_results_and_cancels_the_rest(kubeconfig, tmp_path):
    script = 'case "$HOSTNAME" in api) echo first;; *) sleep 60;; esac'
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.Popen(
        [KDEBUG, "run", "api", "web", "--parallel", "1", "-o", "jsonl", "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        first = json.loads(proc.stdout.readline())  # api finished; web is now running its sleep
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    later = [json.loads(line) for line in rest.decode().splitlines()]
    assert (first["pod"], first["stdout"], first["error"]) == ("api", "first\n", None)
    assert [(item["pod"], item["error"]["kind"]) for item in later] == [("web", "cancelled")]
    assert proc.returncode == 130


def viewer_kubeconfig(emulator, tmp_path, resources):
    emulator.add_user(
        "viewer",
        rules=[
            {
                "verbs": ["get", "list", "watch"],
                "resources": resources,
                "namespaces": ["*"],
                "apiGroups": [""],
            }
        ],
    )
    return str(emulator.write_kubeconfig(tmp_path / "viewer.yaml", user="viewer", namespace="demo"))


def test_every_pod_forbidden_exits_66_with_server_message(kubeconfig, demo_emulator, run_kdebug, tmp_path):
    config = viewer_kubeconfig(demo_emulator, tmp_path, ["pods"])
    result = run_kdebug("run", "web", "api", "--kubeconfig", config, "-o", "json", "--", "true")
    errors = {item["pod"]: item["error"] for item in result.json()}
    assert result.code == 66
    assert all(
        e["kind"] == "forbidden" and 'cannot patch resource "pods/ephemeralcontainers"' in e["message"]
        for e in errors.values()
    )


def test_listing_pods_forbidden_exits_66_before_any_pod(kubeconfig, demo_emulator, run_kdebug, tmp_path):
    config = viewer_kubeconfig(demo_emulator, tmp_path, ["nodes"])
    result = run_kdebug("run", "-l", "app=shop", "--all", "--kubeconfig", config, "--", "true")
    assert (result.code, result.out, "Traceback" in result.err) == (66, "", False)


def test_a_pod_that_cannot_be_debugged_fails_alone_and_is_recorded(
    kubeconfig, demo_emulator, run_kdebug, make_pod
):
    demo_emulator.apply(
        make_pod(
            name="stuck",
            containers=[{"name": "app", "image": "registry.kdebug.test/no/such:1"}],
            namespace="demo",
        )
    )
    result = run_kdebug("run", "web", "stuck", "-o", "json", "--", "true")
    pods = result.by_pod()
    assert (result.code, pods["web"]["error"], pods["stuck"]["error"]["kind"]) == (70, None, "not_supported")
    record = audit_record(pods["stuck"]["session_id"])
    assert (record["pod"], record["status"], record["error_kind"]) == ("stuck", "failed", "not_supported")


def test_the_cap_covers_stdout_and_stderr_together(kubeconfig, run_kdebug):
    command = ["sh", "-c", "echo 0123456789; echo abcdefghij >&2"]
    item = run_kdebug("run", "web", "--max-output", "15", "-o", "json", "--", *command).json()[0]
    kept = item["stdout"] + item["stderr"]
    assert (len(kept), item["truncated"]) == (15, True)
    assert "0123456789\n".startswith(item["stdout"]) and "abcdefghij\n".startswith(item["stderr"])


def test_a_profile_gets_its_own_toolbox_which_is_then_reused(kubeconfig, demo_emulator, run_kdebug):
    # api runs as 65532: `auto` is restricted as 65532 there too, so the other toolbox is general's
    plain = run_kdebug("run", "api", "--profile", "general", "-o", "json", "--", "id", "-u").json()[0]
    restricted = run_kdebug("run", "api", "--profile", "restricted", "-o", "json", "--", "true").json()[0]
    again = run_kdebug("run", "api", "--profile", "restricted", "-o", "json", "--", "true").json()[0]
    pod = demo_emulator.get("pods", "demo", "api")
    containers = {c["name"]: c for c in pod["spec"]["ephemeralContainers"]}
    security = containers[restricted["debug_container"]]["securityContext"]
    assert sorted(containers) == sorted([plain["debug_container"], restricted["debug_container"]])
    assert again["debug_container"] == restricted["debug_container"] and again["error"] is None
    assert (security["runAsNonRoot"], security["allowPrivilegeEscalation"], security["runAsUser"]) == (
        True,
        False,
        65532,
    )


def test_unknown_profile_is_a_usage_error(kubeconfig, run_kdebug):
    result = run_kdebug("run", "api", "--profile", "root", "--", "true")
    assert (result.code, "unknown profile 'root'" in result.err) == (64, True)
