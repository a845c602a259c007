"""kdebug.automation.results (pure): JSON fields, text prefixes, aggregate exit code, the schema validator."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kdebug.automation import results as runresult
from kdebug.automation.results import RESULT_SCHEMA, RunError, RunResult, schema_problems

OK = RunResult(
    pod="web",
    namespace="demo",
    container="app",
    debug_container="kdebug-tbx-abcde",
    debug_image="busybox",
    exit_code=0,
    stdout="a\nb\n",
    duration_s=0.1234,
    session_id="s1",
)
FAILED = RunResult(
    pod="api",
    namespace="demo",
    container="app",
    exit_code=3,
    stderr="oops\n",
    error=RunError("exit_code", "command exited with code 3"),
)
ERRORED = RunResult(pod="db", namespace="demo", error=RunError("forbidden", "pods is forbidden"))


def test_text_lines_are_prefixed_like_kubectl_logs_prefix():
    assert runresult.render_text(OK) == "[pod/web/app] a\n[pod/web/app] b\n"


def test_text_shows_stderr_and_the_failure():
    assert runresult.render_text(FAILED) == (
        "[pod/api/app] (stderr) oops\n[pod/api/app] exit_code: command exited with code 3\n"
    )


@pytest.mark.parametrize(
    ("results", "code"),
    [([OK], 0), ([OK, FAILED], 70), ([ERRORED], 66), ([OK, ERRORED], 70), ([FAILED, ERRORED], 70), ([], 0)],
    ids=["all-ok", "one-failed", "all-forbidden", "some-forbidden", "mixed-failures", "nothing"],
)
def test_aggregate_exit_code(results, code):
    assert runresult.aggregate_exit_code(results) == code


def test_json_object_has_exactly_the_documented_fields_in_order():
    assert list(runresult.result_dict(OK)) == ["version", *RESULT_SCHEMA["required"][1:]]


@pytest.mark.parametrize("result", [OK, FAILED, ERRORED], ids=["ok", "failed", "errored"])
def test_rendered_results_pass_the_schema(result):
    assert schema_problems(runresult.result_dict(result), RESULT_SCHEMA) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"exit_code": "0"}, "$.exit_code: expected integer or null"),
        ({"truncated": 1}, "$.truncated: expected boolean"),
        ({"version": 2}, "$.version: expected 1"),
        ({"surprise": True}, "unexpected field 'surprise'"),
        ({"error": {"kind": "x"}}, "$.error: missing 'message'"),
        ({"duration_s": -1}, "below 0"),
    ],
    ids=[
        "exit-code-string",
        "truncated-int",
        "wrong-version",
        "extra-field",
        "error-without-message",
        "negative-duration",
    ],
)
def test_schema_validator_catches_changes(change, problem):
    document = {**runresult.result_dict(OK), **change}
    assert any(problem in p for p in schema_problems(document, RESULT_SCHEMA))


def test_missing_field_is_reported():
    document = runresult.result_dict(OK)
    del document["session_id"]
    assert schema_problems(document, RESULT_SCHEMA) == ["$: missing 'session_id'"]


def test_docs_show_the_same_schema_as_the_code():
    text = (Path(__file__).resolve().parents[2] / "docs" / "run-json.md").read_text()
    block = re.search(r"<!-- schema -->\s*```json\n(.*?)```", text, re.DOTALL)
    assert block is not None and json.loads(block.group(1)) == RESULT_SCHEMA


def test_summary_counts_each_status():
    assert runresult.summary_line([OK, FAILED, ERRORED]) == "3 pods: 1 ok, 1 failed, 1 forbidden"


def test_pure_modules_load_no_kubernetes_typer_or_rich():
    code = (
        "import sys, kdebug.automation.results, kdebug.automation.runbook; "
        "print(sorted(m for m in ('kubernetes', 'typer', 'rich') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
