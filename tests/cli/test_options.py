"""Flags in, options object (or the one-line error) out: each command's options through the real click
parser, completed and validated, with the command itself replaced so that no cluster is contacted."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
import typer
import typer.main

from kdebug.cli import attach, demo, doctor, inspect, run, runbook
from kdebug.cli.attach import AttachOptions
from kdebug.cli.demo import DemoOptions
from kdebug.cli.doctor import DoctorOptions
from kdebug.cli.inspect import InspectOptions
from kdebug.cli.main import invoke, main
from kdebug.cli.options import KubeOptions
from kdebug.cli.run import RunOptions
from kdebug.cli.runbook import RunbookOptions
from kdebug.cli.sessions import PruneOptions, SessionFilter
from kdebug.errors import ExitCode

KUBECONFIG_NAMESPACE = "from-kubeconfig"
KUBECONFIG = f"""\
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {{cluster: dev, user: dev, namespace: {KUBECONFIG_NAMESPACE}}}
- name: other
  context: {{cluster: dev, user: dev}}
clusters:
- name: dev
  cluster: {{server: "https://127.0.0.1:1"}}
users:
- name: dev
  user: {{token: t}}
"""


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def parse(module: ModuleType, line: str) -> tuple[object | None, int]:
    """The options `module`'s command would run with for `line` (as typed, `kdebug` left out)."""
    seen: list[object] = []

    def execute(options: object) -> int:
        seen.append(options)
        return 0

    app = typer.Typer(rich_markup_mode=None)
    module.register(app, execute=execute)
    code = invoke(typer.main.get_group(app), shlex.split(line))
    return (seen[0] if seen else None), code


def error_of(module: ModuleType, line: str, capsys: pytest.CaptureFixture[str]) -> str:
    options, code = parse(module, line)
    assert (options, code) == (None, ExitCode.USAGE)
    return capsys.readouterr().err


def kube(namespace: str | None = KUBECONFIG_NAMESPACE, **fields: str | None) -> KubeOptions:
    return KubeOptions(namespace=namespace, **fields)


# -- attach ---------------------------------------------------------------------------------------------
ATTACH_CASES = {
    "pod name, namespace from the kubeconfig": ("attach web", AttachOptions(kube=kube(), target="web")),
    "pod name with -n": ("attach web -n demo", AttachOptions(kube=kube("demo"), target="web")),
    "pod/NAME": ("attach pod/web -n demo", AttachOptions(kube=kube("demo"), target="pod/web")),
    "deploy/NAME with -c": (
        "attach deploy/shop -c server",
        AttachOptions(kube=kube(), target="deploy/shop", container="server"),
    ),
    "selector and a command": (
        "attach -l app=api -- echo ok",
        AttachOptions(kube=kube(), selector="app=api", command=["echo", "ok"]),
    ),
    "command after --": (
        "attach web -n demo -- ls -l /proc/1/root",
        AttachOptions(kube=kube("demo"), target="web", command=["ls", "-l", "/proc/1/root"]),
    ),
    "flags after -- belong to the command": (
        "attach web -- kubectl get pods -n kube-system -- x",
        AttachOptions(
            kube=kube(), target="web", command=["kubectl", "get", "pods", "-n", "kube-system", "--", "x"]
        ),
    ),
    "flags before the target": ("attach -n demo web", AttachOptions(kube=kube("demo"), target="web")),
    "--context without a namespace in it": (
        "attach web --context other",
        AttachOptions(kube=kube(None, context="other"), target="web"),
    ),
    "--kubeconfig that does not exist: namespace left for connect": (
        "attach web --kubeconfig /nonexistent/kubeconfig",
        AttachOptions(kube=kube(None, kubeconfig="/nonexistent/kubeconfig"), target="web"),
    ),
    "--profile and --force": (
        "attach api --profile restricted --force",
        AttachOptions(kube=kube(), target="api", profile="restricted", force=True),
    ),
    "--timeout and --idle-timeout": (
        "attach web --timeout 30s --idle-timeout 5m",
        AttachOptions(kube=kube(), target="web", timeout="30s", idle_timeout="5m"),
    ),
    "--image": (
        "attach web --image gcr.io/distroless/base:debug",
        AttachOptions(kube=kube(), target="web", image="gcr.io/distroless/base:debug"),
    ),
    "--no-reuse": ("attach web --no-reuse", AttachOptions(kube=kube(), target="web", reuse=False)),
    "--copy alone": ("attach crashy --copy", AttachOptions(kube=kube(), target="crashy", copy=True)),
    "--copy with --copy-command and --keep": (
        "attach crashy --copy --copy-command 'sleep infinity' --keep",
        AttachOptions(kube=kube(), target="crashy", copy=True, copy_command="sleep infinity", keep=True),
    ),
    "--copy with --delete": (
        "attach crashy --copy --delete",
        AttachOptions(kube=kube(), target="crashy", copy=True, keep=False),
    ),
    "reason and recording flags": (
        "attach web --reason INC-42 --no-record --record-input",
        AttachOptions(kube=kube(), target="web", reason="INC-42", no_record=True, record_input=True),
    ),
}


@pytest.mark.parametrize(("line", "expected"), ATTACH_CASES.values(), ids=ATTACH_CASES.keys())
def test_attach_options(line: str, expected: AttachOptions) -> None:
    assert parse(attach, line) == (expected, 0)


ATTACH_ERRORS = {
    "no target": ("attach", "error: missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)"),
    "a second positional without --": (
        "attach web ls",
        "error: kdebug attach: Got unexpected extra argument (ls)\n"
        "hint: a command to run goes after --: kdebug attach web -- ls",
    ),
    "target and selector": (
        "attach web -l app=api",
        "error: give TARGET or -l SELECTOR, not both ('web' and -l app=api)",
    ),
    "selector and a command without --": (
        "attach -l app=api ls",
        "error: give TARGET or -l SELECTOR, not both ('ls' and -l app=api)",
    ),
    "--copy-command without --copy": (
        "attach web --copy-command 'sleep 1'",
        "error: --copy-command needs --copy",
    ),
    "--keep without --copy": ("attach web --keep", "error: --keep/--delete need --copy"),
    "--delete without --copy": ("attach web --delete", "error: --keep/--delete need --copy"),
    "empty --copy-command": ("attach web --copy --copy-command ''", "error: --copy-command is empty"),
    "unbalanced quote in --copy-command": (
        "attach web --copy --copy-command 'sleep \"'",
        "error: --copy-command: No closing quotation",
    ),
    "unknown profile": (
        "attach web --profile root",
        "error: unknown profile 'root': choose one of "
        "auto, general, baseline, restricted, netadmin, sysadmin",
    ),
    "bad --timeout": (
        "attach web --timeout soon",
        "error: --timeout: invalid duration 'soon' (use forms like 90s, 2m, 1h30m, 1.5s, 2d, 1w)",
    ),
    "bad --idle-timeout": (
        "attach web --idle-timeout forever",
        "error: --idle-timeout: invalid duration 'forever' (use forms like 90s, 2m, 1h30m, 1.5s, 2d, 1w)",
    ),
    "-n without a value": ("attach web -n", "error: Option '-n' requires an argument."),
    "unknown flag": ("attach web --bogus", "error: kdebug attach: No such option '--bogus'."),
}


@pytest.mark.parametrize(("line", "message"), ATTACH_ERRORS.values(), ids=ATTACH_ERRORS.keys())
def test_attach_usage_errors(line: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert error_of(attach, line, capsys) == message + "\n"


# -- run ------------------------------------------------------------------------------------------------
RUN_CASES = {
    "one pod": (
        "run web -- cat /etc/os-release",
        RunOptions(kube=kube(), targets=["web"], command=["cat", "/etc/os-release"]),
    ),
    "several pods, JSON": (
        "run web api -n demo -o json -- ls",
        RunOptions(kube=kube("demo"), targets=["web", "api"], command=["ls"], output="json"),
    ),
    "every pod of a selector": (
        "run -l app=shop --all --parallel 20 -o jsonl -- netstat -tln",
        RunOptions(
            kube=kube(),
            selector="app=shop",
            all_pods=True,
            parallel=20,
            output="jsonl",
            command=["netstat", "-tln"],
        ),
    ),
    "a script": (
        "run web --script checks.sh",
        RunOptions(kube=kube(), targets=["web"], script=Path("checks.sh")),
    ),
    "fresh container, timeout and output cap": (
        "run web --fresh --timeout 30s --max-output 64KiB -- true",
        RunOptions(
            kube=kube(), targets=["web"], command=["true"], fresh=True, timeout="30s", max_output="64KiB"
        ),
    ),
}


@pytest.mark.parametrize(("line", "expected"), RUN_CASES.values(), ids=RUN_CASES.keys())
def test_run_options(line: str, expected: RunOptions) -> None:
    assert parse(run, line) == (expected, 0)


RUN_ERRORS = {
    "no command": (
        "run web",
        "error: missing COMMAND: put it after --, e.g. `kdebug run web -- ls /`, or use --script FILE",
    ),
    "script and command": (
        "run web --script s.sh -- ls",
        "error: give either --script FILE or -- COMMAND, not both",
    ),
    "unknown output": ("run web -o yaml -- ls", "error: -o yaml: choose one of text, json, jsonl"),
    "no parallelism": ("run web --parallel 0 -- ls", "error: --parallel must be at least 1"),
    "no pods allowed": ("run web --max-pods 0 -- ls", "error: --max-pods must be at least 1"),
    "fresh with stdin": (
        "run web --fresh --stdin-file in.txt -- cat",
        "error: --fresh cannot feed stdin (--stdin-file): leave out --fresh to use the toolbox",
    ),
    "bad timeout": (
        "run web --timeout never -- ls",
        "error: --timeout: invalid duration 'never' (use forms like 90s, 2m, 1h30m, 1.5s, 2d, 1w)",
    ),
}


@pytest.mark.parametrize(("line", "message"), RUN_ERRORS.values(), ids=RUN_ERRORS.keys())
def test_run_usage_errors(line: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert error_of(run, line, capsys) == message + "\n"


# -- inspect, doctor, runbook, demo ---------------------------------------------------------------------
OTHER_CASES = {
    "inspect with JSON and the spec": (
        inspect,
        "inspect deploy/shop -c server -o json --spec",
        InspectOptions(kube=kube(), target="deploy/shop", container="server", output="json", spec=True),
    ),
    "inspect without registries": (
        inspect,
        "inspect web --no-registry --platform linux/arm64",
        InspectOptions(kube=kube(), target="web", no_registry=True, platform="linux/arm64"),
    ),
    "doctor keeps the kubeconfig for its checks": (doctor, "doctor", DoctorOptions(kube=KubeOptions())),
    "doctor a pod as JSON": (
        doctor,
        "doctor web -n demo -o json",
        DoctorOptions(kube=KubeOptions("demo"), target="web", output="json"),
    ),
    "runbook with targets replacing the file's": (
        runbook,
        "runbook run checks.yaml api -n demo -o markdown",
        RunbookOptions(
            file=Path("checks.yaml"), kube=KubeOptions("demo"), targets=["api"], output="markdown"
        ),
    ),
    "demo on a port": (demo, "demo --port 8080 --runtime process", DemoOptions(port=8080, runtime="process")),
}


@pytest.mark.parametrize(("module", "line", "expected"), OTHER_CASES.values(), ids=OTHER_CASES.keys())
def test_other_command_options(module: ModuleType, line: str, expected: object) -> None:
    assert parse(module, line) == (expected, 0)


OTHER_ERRORS = {
    "inspect without target": (
        inspect,
        "inspect",
        "error: missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)",
    ),
    "inspect unknown output": (
        inspect,
        "inspect web -o xml",
        "error: --output must be one of table, json, yaml, not 'xml'",
    ),
    "doctor unknown output": (
        doctor,
        "doctor -o yaml",
        "error: unknown output 'yaml': choose one of table, json",
    ),
    "runbook unknown output": (
        runbook,
        "runbook run c.yaml -o pdf",
        "error: -o pdf: choose one of text, json, markdown",
    ),
    "runbook without file": (
        runbook,
        "runbook run",
        "error: kdebug runbook run: Missing argument 'FILE.yaml'.",
    ),
    "demo port out of range": (
        demo,
        "demo --port 70000",
        "error: --port must be between 0 and 65535, not 70000",
    ),
    # checked before the launcher loads, so a bad flag is not reported as a missing demo extra
    "demo unknown runtime": (
        demo,
        "demo --runtime docker",
        "error: --runtime must be one of auto, podman, process, not 'docker'",
    ),
}


@pytest.mark.parametrize(("module", "line", "message"), OTHER_ERRORS.values(), ids=OTHER_ERRORS.keys())
def test_other_command_usage_errors(
    module: ModuleType, line: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert error_of(module, line, capsys) == message + "\n"


# -- sessions (validated before the store is opened) ----------------------------------------------------
SESSIONS_ERRORS = {
    "unknown status": (
        "sessions list --status done",
        "error: --status: must be one of running, ok, failed, interrupted, got 'done'",
    ),
    "negative limit": ("sessions list --limit -1", "error: --limit: must be 0 (no limit) or more"),
    "bad --since": (
        "sessions list --since soon",
        "error: --since: invalid time 'soon' (use a duration like 30m, 1h30m, 90d, 2w, a date like "
        "2026-11-27 or a time like 2026-11-27T06:00:00Z)",
    ),
    "unknown export format": (
        "sessions export --format csv",
        "error: --format: must be one of jsonl, asciicast, got 'csv'",
    ),
    "replay at speed 0": ("sessions replay 2026 --speed 0", "error: --speed: must be more than 0"),
    "short head hash": (
        "sessions verify --expect-head abc",
        "error: --expect-head: must be a 64-character SHA-256 hex hash (from `kdebug sessions head`)",
    ),
    "unknown head output": ("sessions head -o xml", "error: --output: must be one of text, json, got 'xml'"),
}


@pytest.mark.parametrize(("line", "message"), SESSIONS_ERRORS.values(), ids=SESSIONS_ERRORS.keys())
def test_sessions_usage_errors(
    line: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # an empty store, were it opened
    monkeypatch.setenv("KDEBUG_CONFIG", str(tmp_path / "config.yaml"))
    (tmp_path / "config.yaml").write_text("{}\n")
    assert main(shlex.split(line)) == ExitCode.USAGE
    assert capsys.readouterr().err == message + "\n"


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "bounds"),
    [
        ("24h", None, ("2026-11-26T12:00:00", None)),
        ("2w", "30m", ("2026-11-13T12:00:00", "2026-11-27T11:30:00")),
        ("2026-11-01", None, ("2026-11-01T00:00:00", None)),
    ],
    ids=["relative", "relative both ends", "a date"],
)
def test_session_filter_bounds_count_from_the_completed_clock(
    since: str, until: str | None, bounds: tuple[str | None, str | None]
) -> None:
    session_filter = SessionFilter(since=since, until=until, now=NOW)
    session_filter.complete()
    got = session_filter.bounds()
    assert [b[:19] if b else None for b in got] == list(bounds)


def test_prune_options_complete_reads_the_clock_once() -> None:
    options = PruneOptions(older_than="90d")
    options.complete()
    assert options.now is not None
    assert options.cutoff() == options.cutoff()


def test_a_broken_kubeconfig_leaves_the_namespace_to_connect(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed\n")
    options = KubeOptions(kubeconfig=str(broken))
    options.complete()
    assert options == KubeOptions(kubeconfig=str(broken))
