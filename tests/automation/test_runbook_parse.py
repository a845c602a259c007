"""kdebug.automation.runbook (pure): the step model, defaults, judging steps, Markdown rendering."""

from __future__ import annotations

import pytest

from kdebug.automation import runbook
from kdebug.automation.results import RunError, RunResult
from kdebug.automation.runbook import PodReport, RunbookError, Step, StepOutcome, parse_runbook

FULL = """\
name: full
description: every option
target: [web, deploy/shop]
selector: app=x
all: true
namespace: demo
container: app
image: busybox:1.36
profile: restricted
parallel: 4
timeout: 30s
steps:
  - name: string
    run: ls /
  - name: list
    run: [cat, /etc/hostname]
    timeout: 5
    expect: '^web'
    on_failure: continue
  - name: script
    script: |
      echo one
      echo two
"""


def test_a_full_runbook_parses_into_the_model():
    book = parse_runbook(FULL)
    assert (
        book.name,
        book.targets,
        book.selector,
        book.all_pods,
        book.namespace,
        book.container,
        book.image,
        book.profile,
        book.parallel,
    ) == ("full", ["web", "deploy/shop"], "app=x", True, "demo", "app", "busybox:1.36", "restricted", 4)
    assert book.steps == [
        Step("string", shell_code="ls /", timeout_s=30.0, line=13),
        Step(
            "list",
            argv=["cat", "/etc/hostname"],
            timeout_s=5.0,
            expect="^web",
            on_failure="continue",
            line=15,
        ),
        Step("script", shell_code="echo one\necho two\n", timeout_s=30.0, line=20),
    ]


def test_step_timeout_defaults_to_60s():
    book = parse_runbook("name: x\nsteps:\n  - name: a\n    run: ls\n")
    assert (book.steps[0].timeout_s, book.steps[0].on_failure) == (60.0, "stop")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: x\nprofile: root\nsteps:\n  - name: a\n    run: ls\n", "x.yaml:2: profile 'root'"),
        ("name: x\nparallel: 0\nsteps:\n  - name: a\n    run: ls\n", "x.yaml:2: parallel must be"),
        ("name: x\nall: maybe\nsteps:\n  - name: a\n    run: ls\n", "x.yaml:2: all must be true or false"),
        ("name: 12\nsteps:\n  - name: a\n    run: ls\n", "x.yaml:1: name must be a string"),
        ("name: x\nsteps:\n  - run: ls\n", "x.yaml:3: step 1: missing required key 'name'"),
        ("name: x\nsteps:\n  - name: a\n    run: []\n", "x.yaml:4: step 1: run must not be empty"),
        ("", "x.yaml:1: the file is empty"),
    ],
    ids=[
        "unknown-profile",
        "parallel-zero",
        "all-not-bool",
        "name-not-string",
        "step-without-name",
        "empty-run-list",
        "empty-file",
    ],
)
def test_problems_name_file_and_line(text, problem):
    with pytest.raises(RunbookError) as caught:
        parse_runbook(text, "x.yaml")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_the_error_message_is_one_line_with_a_count():
    with pytest.raises(RunbookError) as caught:
        text = "name: x\ncolour: red\nsteps:\n  - name: a\n    run: ls\n    on_failure: retry\n"
        parse_runbook(text, "x.yaml")
    assert "\n" not in caught.value.message and "(and 1 more" in caught.value.message
    assert caught.value.exit_code == 64


def result(stdout="", exit_code=0, error=None):
    return RunResult(pod="web", namespace="demo", exit_code=exit_code, stdout=stdout, error=error)


@pytest.mark.parametrize(
    ("step", "run", "status"),
    [
        (Step("a", shell_code="x"), result("hi"), "ok"),
        (Step("a", shell_code="x", expect="^h"), result("hi"), "ok"),
        (Step("a", shell_code="x", expect="^bye"), result("hi"), "failed"),
        (Step("a", shell_code="x", expect="hi"), result("hi", 1, RunError("exit_code", "code 1")), "failed"),
        (Step("a", shell_code="x"), result(error=RunError("cancelled", "Ctrl-C")), "cancelled"),
    ],
    ids=["exit-0", "expect-matches", "expect-misses", "non-zero-exit-even-if-matching", "cancelled"],
)
def test_judge_step(step, run, status):
    assert runbook.judge_step(step, run).status == status


@pytest.mark.parametrize(
    ("on_failure", "status", "stops"),
    [
        ("stop", "failed", True),
        ("continue", "failed", False),
        ("stop", "ok", False),
        ("continue", "cancelled", True),
    ],
    ids=["stop-after-failure", "continue-after-failure", "ok-goes-on", "cancel-always-stops"],
)
def test_stops_after(on_failure, status, stops):
    step = Step("a", shell_code="x", on_failure=on_failure)
    assert runbook.stops_after(step, StepOutcome("a", status)) is stops


def test_markdown_fences_output_that_contains_a_fence():
    book = parse_runbook("name: md\nsteps:\n  - name: a\n    run: ls\n")
    report = PodReport("web", "demo", "app", [StepOutcome("a", "ok", result("```\ncode\n```\n"))])
    assert "````text\n```\ncode\n```\n````" in runbook.render_markdown(book, [report])
