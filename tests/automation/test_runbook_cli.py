"""`kdebug runbook run|validate` end to end against the demo emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.automation.records import audit_record

EXAMPLES = sorted(Path(__file__).resolve().parents[2].joinpath("examples", "runbooks").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "book.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


STEPS = """\
name: checks
description: two pods, three steps
target: [web, api]
namespace: demo
steps:
  - name: hello
    run: echo "hello $HOSTNAME"
    expect: '^hello (web|api)$'
  - name: picky
    run: [sh, -c, 'echo "from $HOSTNAME"']
    expect: 'from web'
    on_failure: {on_failure}
  - name: last
    script: |
      echo last
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_valid(run_kdebug, path):
    result = run_kdebug("runbook", "validate", str(path))
    assert (result.code, "ok" in result.out) == (0, True)


def test_network_example_passes_against_the_demo(kubeconfig, run_kdebug):
    path = next(p for p in EXAMPLES if p.stem == "network-checks")
    result = run_kdebug("runbook", "run", str(path), "-o", "json")
    report = result.json()
    assert (result.code, report["ok"], [s["status"] for s in report["pods"][0]["steps"]]) == (
        0,
        True,
        ["ok"] * 5,
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_runs_every_step_against_the_demo(kubeconfig, run_kdebug, path):
    report = run_kdebug("runbook", "run", str(path), "-o", "json").json()
    statuses = [step["status"] for pod in report["pods"] for step in pod["steps"]]
    assert statuses and "skipped" not in statuses and "cancelled" not in statuses


def test_a_runbooks_steps_share_one_toolbox_per_pod(demo_emulator, kubeconfig, run_kdebug, tmp_path):
    """Ephemeral containers can never be removed: three steps must not leave three toolboxes."""
    result = run_kdebug("runbook", "run", write(tmp_path, STEPS.format(on_failure="continue")), "-o", "json")
    assert result.code in (0, 70)  # `picky` fails on api by design; the toolbox count is what matters
    for pod in ("web", "api"):
        containers = demo_emulator.get("pods", "demo", pod)["spec"]["ephemeralContainers"]
        assert [c["name"].startswith("kdebug-tbx-") for c in containers] == [True]


def test_expect_mismatch_with_stop_skips_the_rest(kubeconfig, run_kdebug, tmp_path):
    result = run_kdebug("runbook", "run", write(tmp_path, STEPS.format(on_failure="stop")), "-o", "json")
    pods = {pod["pod"]: [(s["name"], s["status"]) for s in pod["steps"]] for pod in result.json()["pods"]}
    assert result.code == 70
    assert pods == {
        "web": [("hello", "ok"), ("picky", "ok"), ("last", "ok")],
        "api": [("hello", "ok"), ("picky", "failed"), ("last", "skipped")],
    }


def test_on_failure_continue_runs_the_next_step(kubeconfig, run_kdebug, tmp_path):
    result = run_kdebug("runbook", "run", write(tmp_path, STEPS.format(on_failure="continue")), "-o", "json")
    api = next(pod for pod in result.json()["pods"] if pod["pod"] == "api")
    assert [(s["name"], s["status"]) for s in api["steps"]] == [
        ("hello", "ok"),
        ("picky", "failed"),
        ("last", "ok"),
    ]
    assert api["steps"][1]["error"]["kind"] == "expect" and result.code == 70


def test_all_steps_passing_exits_0(kubeconfig, run_kdebug, tmp_path):
    book = write(tmp_path, "name: ok\ntarget: web\nsteps:\n  - name: one\n    run: 'true'\n")
    result = run_kdebug("runbook", "run", book, "-n", "demo")
    assert (result.code, "step one: ok" in result.out) == (0, True)


def test_step_timeout_fails_the_step_only(kubeconfig, run_kdebug, tmp_path):
    book = write(
        tmp_path,
        "name: slow\ntarget: web\nnamespace: demo\nsteps:\n"
        "  - name: sleepy\n    run: sleep 60\n    timeout: 2s\n    on_failure: continue\n"
        "  - name: after\n    run: echo after\n",
    )
    steps = run_kdebug("runbook", "run", book, "-o", "json").json()["pods"][0]["steps"]
    assert [(s["name"], s["status"], (s["error"] or {}).get("kind")) for s in steps] == [
        ("sleepy", "failed", "timeout"),
        ("after", "ok", None),
    ]
    assert steps[0]["duration_s"] < 20


def test_targets_on_the_command_line_replace_the_runbook_target(kubeconfig, run_kdebug, tmp_path):
    book = write(tmp_path, STEPS.format(on_failure="stop"))
    pods = [pod["pod"] for pod in run_kdebug("runbook", "run", book, "web", "-o", "json").json()["pods"]]
    assert pods == ["web"]


def test_markdown_report_has_a_table_and_fenced_output(kubeconfig, run_kdebug, tmp_path):
    result = run_kdebug("runbook", "run", write(tmp_path, STEPS.format(on_failure="stop")), "-o", "markdown")
    assert "| Pod | Step | Status | Duration | Exit code |" in result.out
    assert "| demo/api | picky | failed |" in result.out
    assert "```text\nhello web\n```" in result.out


def test_each_step_is_an_audit_session(kubeconfig, run_kdebug, tmp_path):
    book = write(tmp_path, STEPS.format(on_failure="continue"))
    report = run_kdebug("runbook", "run", book, "-o", "json").json()
    steps = [step for pod in report["pods"] for step in pod["steps"]]
    records = [audit_record(step["session_id"]) for step in steps]
    assert [r["extra"]["runbook_step"] for r in records] == [s["name"] for s in steps]
    assert [r["exit_code"] for r in records] == [s["exit_code"] for s in steps]


INVALID = [
    ("unknown-key", "name: x\ncolour: red\nsteps:\n  - name: a\n    run: ls\n", 2, "unknown key 'colour'"),
    ("no-steps", "name: x\n", 1, "missing required key 'steps'"),
    ("run-and-script", "name: x\nsteps:\n  - name: a\n    run: ls\n    script: ls\n", 3, "exactly one of"),
    ("bad-on-failure", "name: x\nsteps:\n  - name: a\n    run: ls\n    on_failure: retry\n", 5, "on_failure"),
    ("bad-regex", "name: x\nsteps:\n  - name: a\n    run: ls\n    expect: '(('\n", 5, "regular expression"),
    ("bad-timeout", "name: x\nsteps:\n  - name: a\n    run: ls\n    timeout: soon\n", 5, "invalid duration"),
    (
        "duplicate-step",
        "name: x\nsteps:\n  - name: a\n    run: ls\n  - name: a\n    run: ls\n",
        5,
        "already used",
    ),
    ("not-yaml", "name: x\nsteps: [\n", 3, "not valid YAML"),
    ("steps-not-a-list", "name: x\nsteps: ls\n", 2, "non-empty list"),
    ("top-level-list", "- name: x\n", 1, "must be a mapping"),
]


@pytest.mark.parametrize(
    ("text", "line", "words"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_runbook_reports_the_line(run_kdebug, tmp_path, text, line, words):
    path = write(tmp_path, text)
    result = run_kdebug("runbook", "validate", path)
    assert result.code == 64
    assert any(f"{path}:{line}:" in row and words in row for row in result.err.splitlines()), result.err
    assert "Traceback" not in result.err


def test_validate_lists_every_problem(run_kdebug, tmp_path):
    path = write(tmp_path, "name: x\ncolour: red\nsteps:\n  - name: a\n    run: ls\n    on_failure: retry\n")
    result = run_kdebug("runbook", "validate", path)
    assert [row.split(":")[2] for row in result.err.splitlines()] == ["2", "6"]


def test_run_refuses_an_invalid_runbook_before_the_cluster(run_kdebug, tmp_path):
    path = write(tmp_path, "name: x\nsteps:\n  - name: a\n")
    result = run_kdebug("runbook", "run", path)
    assert (result.code, f"{path}:3:" in result.err, result.out) == (64, True, "")


def test_missing_file_is_a_usage_error(run_kdebug, tmp_path):
    result = run_kdebug("runbook", "validate", str(tmp_path / "nope.yaml"))
    assert (result.code, "nope.yaml" in result.err, "Traceback" in result.err) == (64, True, False)


def test_json_report_has_a_version(kubeconfig, run_kdebug, tmp_path):
    book = write(tmp_path, "name: v\ntarget: web\nnamespace: demo\nsteps:\n  - name: one\n    run: 'true'\n")
    report = json.loads(run_kdebug("runbook", "run", book, "-o", "json").out)
    assert (report["version"], report["runbook"], report["ok"]) == (1, "v", True)
