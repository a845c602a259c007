"""Hostile names (issue 13, items 2 and 11): TARGET, -n, -c, -l and a runbook's namespace/target/container.

Each value runs through the real entry point against the demo emulator (a real socket). A bad name
must end as one usage line (exit 64) naming the option and the rule, before any request: the
emulator's request log is the same before and after. Before the fix these values reached the URL
path (`-n 'demo/pods/web?'` patched the pod web itself), injected a query (`web?dryRun=All`), were
cut at a fragment (`web#frag`), or ended as exit 69 "InvalidURL" (a newline, non-ASCII).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kdebug.errors import ExitCode
from kdebug_emulator import Emulator

LONG = "w" * 300

# (extra arguments to `kdebug attach`, the option the error names, a word of the rule it states)
ATTACH_CASES = [
    pytest.param(["web", "-n", "demo/pods/web?"], "-n 'demo/pods/web?'", "DNS-1123 label", id="ns-path"),
    pytest.param(["web", "-n", ""], "-n ''", "DNS-1123 label", id="ns-empty"),
    pytest.param(["web", "-n", "demo\n"], "-n 'demo\\x0a'", "DNS-1123 label", id="ns-newline"),
    pytest.param(["web", "-n", "Demo"], "-n 'Demo'", "DNS-1123 label", id="ns-uppercase"),
    pytest.param(["web", "-n", "d" * 64], "-n 'ddd", "at most 63", id="ns-64-chars"),
    pytest.param(["web?dryRun=All"], "TARGET 'web?dryRun=All'", "DNS-1123 subdomain", id="target-query"),
    pytest.param(["web#frag"], "TARGET 'web#frag'", "DNS-1123 subdomain", id="target-fragment"),
    pytest.param(["web\n"], "TARGET 'web\\x0a'", "DNS-1123 subdomain", id="target-newline"),
    pytest.param(["wéb"], "TARGET 'wéb'", "DNS-1123 subdomain", id="target-non-ascii"),
    pytest.param(["../web"], "TARGET '../web'", "", id="target-dotdot"),
    pytest.param(["pod/../web"], "TARGET 'pod/../web'", "DNS-1123 subdomain", id="target-pod-dotdot"),
    pytest.param(["deploy/shop?x=1"], "TARGET 'deploy/shop?x=1'", "a deployment name", id="target-workload"),
    pytest.param([LONG], "TARGET 'www", "at most 253", id="target-300-chars"),
    pytest.param(["web\x1b]52;c;cHduZWQ=\x07"], "TARGET 'web\\x1b]52", "DNS-1123", id="target-osc52"),
    pytest.param(["web", "-c", "app?x=1"], "-c 'app?x=1'", "DNS-1123 label", id="container-query"),
    pytest.param(["web", "-c", "app\n"], "-c 'app\\x0a'", "DNS-1123 label", id="container-newline"),
    pytest.param(["-l", "app=web\n"], "-l 'app=web\\x0a'", "control characters", id="selector-newline"),
    pytest.param(["-l", "app=web\x00"], "-l 'app=web\\x00'", "control characters", id="selector-nul"),
]


def refused_without_requests(emulator: Emulator, run, args: list[str]):
    before = len(emulator.requests)
    result = run(*args)
    assert emulator.requests[before:] == []
    return result


def assert_one_usage_line(result, shown: str, rule: str) -> None:
    assert result.code == ExitCode.USAGE, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"error: {shown}"), lines[0]
    assert rule in lines[0]
    assert "\x1b" not in result.err and "\x07" not in result.err
    assert result.out == ""


@pytest.mark.parametrize(("args", "shown", "rule"), ATTACH_CASES)
def test_attach_refuses_a_bad_name_before_any_request(
    demo_emulator: Emulator, kubeconfig: Path, run_kdebug, args: list[str], shown: str, rule: str
) -> None:
    result = refused_without_requests(
        demo_emulator, run_kdebug, ["attach", "--kubeconfig", str(kubeconfig), *args, "--", "true"]
    )
    assert_one_usage_line(result, shown, rule)


@pytest.mark.parametrize(
    ("command", "args", "shown"),
    [
        pytest.param("run", ["web", "web?dryRun=All"], "TARGET 'web?dryRun=All'", id="run-second-target"),
        pytest.param("run", ["web", "-n", "demo/pods/web?"], "-n 'demo/pods/web?'", id="run-namespace"),
        pytest.param("run", ["web", "-c", "a/b"], "-c 'a/b'", id="run-container"),
        pytest.param("inspect", ["web#frag"], "TARGET 'web#frag'", id="inspect-target"),
        pytest.param("inspect", ["web", "-n", "demo?x"], "-n 'demo?x'", id="inspect-namespace"),
        pytest.param("doctor", ["-n", "demo/pods"], "-n 'demo/pods'", id="doctor-namespace"),
    ],
)
def test_other_commands_refuse_a_bad_name_before_any_request(
    demo_emulator: Emulator, kubeconfig: Path, run_kdebug, command: str, args: list[str], shown: str
) -> None:
    tail = ["--", "true"] if command == "run" else []
    result = refused_without_requests(
        demo_emulator, run_kdebug, [command, "--kubeconfig", str(kubeconfig), *args, *tail]
    )
    assert_one_usage_line(result, shown, "DNS-1123")


def test_a_bad_namespace_in_the_kubeconfig_is_refused_before_any_request(
    demo_emulator: Emulator, tmp_path: Path, run_kdebug
) -> None:
    path = demo_emulator.write_kubeconfig(tmp_path / "kubeconfig", namespace="demo/pods/web?")
    result = refused_without_requests(
        demo_emulator, run_kdebug, ["attach", "web", "--kubeconfig", str(path), "--", "true"]
    )
    assert_one_usage_line(result, "the kubeconfig's namespace 'demo/pods/web?'", "DNS-1123 label")


RUNBOOK = """\
name: hostile
{field}
steps:
  - name: one
    run: [echo, ok]
"""


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        pytest.param("namespace: 'demo/pods/web?'", "namespace 'demo/pods/web?'", id="namespace-path"),
        pytest.param('namespace: "demo\\n"', "namespace 'demo\\x0a'", id="namespace-newline"),
        pytest.param("namespace: ''", "namespace ''", id="namespace-empty"),
        pytest.param("target: 'web?dryRun=All'", "target 'web?dryRun=All'", id="target-query"),
        pytest.param("target: [web, 'web#frag']", "target 'web#frag'", id="target-list"),
        pytest.param("container: 'app/x'", "container 'app/x'", id="container"),
        pytest.param('selector: "app=web\\r"', "selector 'app=web\\x0d'", id="selector-cr"),
    ],
)
def test_a_runbook_with_a_bad_name_is_refused_before_any_request(
    demo_emulator: Emulator, kubeconfig: Path, run_kdebug, tmp_path: Path, field: str, shown: str
) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(RUNBOOK.format(field=field), encoding="utf-8")
    result = refused_without_requests(
        demo_emulator, run_kdebug, ["runbook", "run", str(book), "--kubeconfig", str(kubeconfig)]
    )
    assert result.code == ExitCode.USAGE, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"error: {book}:2: {shown}: "), lines[0]


def test_a_good_name_still_reaches_the_pod(demo_emulator: Emulator, kubeconfig: Path, run_kdebug) -> None:
    result = run_kdebug(
        "attach", "pod/web", "-n", "demo", "--kubeconfig", str(kubeconfig), "--", "echo", "ok"
    )
    assert (result.code, result.out.strip()) == (0, "ok"), result.err
