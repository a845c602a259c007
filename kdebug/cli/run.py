"""`kdebug run`: run one command beside the target container in one pod or many, collect the results."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from kdebug import config as config_files
from kdebug.cli import options as common
from kdebug.durations import parse_duration
from kdebug.errors import ExitCode, UsageError
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    from kdebug.automation.results import RunResult
    from kdebug.automation.runner import RunRequest

results = lazy_module("kdebug.automation.results")
runner = lazy_module("kdebug.automation.runner")
recorder_files = lazy_module("kdebug.sessions.recorder")

EXAMPLES = """\
Examples:

  kdebug run web -n demo -- cat /proc/1/root/etc/os-release

  kdebug run web api -n demo -o json -- sh -c 'ls -l /proc/1/root/'

  kdebug run -l app=shop --all --parallel 20 -o jsonl -- netstat -tln

  kdebug run -l app=shop --all --script checks.sh --timeout 30s

The command runs in a long-lived kdebug toolbox container per pod (kdebug-tbx-XXXXX), added once
and reused by later runs; --fresh adds a new container whose main process is the command.

Exit status: 0 when every pod's command exited 0; 70 when at least one failed, timed out or could
not run; 64 usage; 66 when permission was refused (for every pod); 130 when interrupted
(docs/exit-codes.md).
JSON output: docs/run-json.md.
"""

OUTPUT_FORMATS = ("text", "json", "jsonl")


@dataclass
class RunOptions:
    """The flags of `kdebug run` as the user gave them (durations and sizes still text)."""

    kube: common.KubeOptions = field(default_factory=common.KubeOptions)
    targets: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    selector: str | None = None
    all_pods: bool = False
    max_pods: int = 50
    container: str | None = None
    image: str | None = None
    profile: str | None = None
    fresh: bool = False
    parallel: int = 10
    timeout: str = "5m"
    max_output: str = "1MiB"
    stdin_file: Path | None = None
    script: Path | None = None
    output: str = "text"
    reason: str | None = None
    record: bool = True
    toolbox_lifetime: str = "1h"

    def complete(self) -> None:
        self.kube.complete()

    def validate(self) -> None:
        if self.output not in OUTPUT_FORMATS:
            raise UsageError(f"-o {self.output}: choose one of {', '.join(OUTPUT_FORMATS)}")
        if self.script is not None and self.command:
            raise UsageError("give either --script FILE or -- COMMAND, not both")
        if self.script is None and not self.command:
            raise UsageError(
                "missing COMMAND: put it after --, e.g. `kdebug run web -- ls /`, or use --script FILE"
            )
        if self.parallel < 1:
            raise UsageError("--parallel must be at least 1")
        if self.max_pods < 1:
            raise UsageError("--max-pods must be at least 1")
        self.kube.validate()
        common.validate_target_names(self.targets, self.container, self.selector)
        if self.stdin_file is not None and self.fresh:
            raise UsageError("--fresh cannot feed stdin (--stdin-file): leave out --fresh to use the toolbox")
        parse_duration(self.timeout, option="--timeout")
        parse_duration(self.toolbox_lifetime, option="--toolbox-lifetime")
        recorder_files.parse_size(self.max_output, option="--max-output")

    def request(self) -> RunRequest:
        """The runner's request (call after validate): reads --script and --stdin-file."""
        if self.script is not None:
            command = runner.Command(
                shell_code=read_input_file(self.script, "--script").decode("utf-8", "replace")
            )
        else:
            command = runner.Command(argv=list(self.command))
        if self.stdin_file is not None:
            stdin = read_input_file(self.stdin_file, "--stdin-file")
            command = runner.Command(command.argv, command.shell_code, stdin)
        return runner.RunRequest(
            command=command,
            targets=list(self.targets),
            selector=self.selector,
            all_pods=self.all_pods,
            max_pods=self.max_pods,
            namespace=self.kube.namespace,
            context=self.kube.context,
            kubeconfig=self.kube.kubeconfig,
            container=self.container,
            image=self.image,
            profile=self.profile,
            fresh=self.fresh,
            parallel=self.parallel,
            timeout_s=parse_duration(self.timeout, option="--timeout"),
            max_output=recorder_files.parse_size(self.max_output, option="--max-output"),
            record=self.record,
            reason=self.reason,
            lifetime_s=int(parse_duration(self.toolbox_lifetime, option="--toolbox-lifetime")),
        )


def register(app: typer.Typer, execute: Callable[[RunOptions], int] | None = None) -> None:
    """Add `run` to `app`; `execute` runs the prepared options (tests pass one that records them)."""
    execute = execute or run_command

    @app.command("run", cls=common.DashDashCommand, epilog=EXAMPLES)
    def run(
        ctx: typer.Context,
        targets: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="TARGET...",
                show_default=False,
                help="NAME, pod/NAME or KIND/NAME (several allowed); the command follows --.",
            ),
        ] = None,
        selector: common.PodsSelector = None,
        all_pods: Annotated[
            bool, typer.Option("--all", help="With -l: every matching Running pod, not just one.")
        ] = False,
        max_pods: Annotated[
            int, typer.Option("--max-pods", help="Safety cap on the number of pods; more is an error.")
        ] = 50,
        namespace: common.Namespace = None,
        context: common.Context = None,
        kubeconfig: common.Kubeconfig = None,
        container: Annotated[
            str | None,
            typer.Option("-c", "--container", show_default=False, help="Target container in each pod."),
        ] = None,
        image: Annotated[
            str | None,
            typer.Option(
                "--image", show_default=False, help="Debug image (default: chosen from the target's image)."
            ),
        ] = None,
        profile: Annotated[
            str | None,
            typer.Option(
                "--profile",
                show_default=False,
                help="Security profile: auto, general, baseline, restricted, netadmin, sysadmin.",
            ),
        ] = None,
        fresh: Annotated[
            bool, typer.Option("--fresh", help="A new ephemeral container whose main process is the command.")
        ] = False,
        parallel: Annotated[int, typer.Option("--parallel", help="Pods worked on at the same time.")] = 10,
        timeout: Annotated[str, typer.Option("--timeout", help="Time allowed per pod.")] = "5m",
        max_output: Annotated[
            str,
            typer.Option(
                "--max-output",
                help="Output kept per pod, stdout and stderr together (more is cut, `truncated` set).",
            ),
        ] = "1MiB",
        stdin_file: Annotated[
            Path | None,
            typer.Option("--stdin-file", show_default=False, help="Feed this file to the command's stdin."),
        ] = None,
        script: Annotated[
            Path | None,
            typer.Option("--script", show_default=False, help="Run this file with the debug image's shell."),
        ] = None,
        output: Annotated[str, typer.Option("-o", "--output", help="text, json or jsonl.")] = "text",
        reason: Annotated[
            str | None,
            typer.Option(
                "--reason", show_default=False, help="Why (ticket or incident id), kept in the audit log."
            ),
        ] = None,
        record: Annotated[
            bool, typer.Option("--record/--no-record", help="Keep an output transcript in the audit log.")
        ] = True,
        toolbox_lifetime: Annotated[
            str,
            typer.Option(
                "--toolbox-lifetime", help="How long a new toolbox container lives before it ends itself."
            ),
        ] = "1h",
    ) -> None:
        """Run COMMAND beside TARGET's container in each pod (no TTY); results as text, JSON or JSON lines."""
        options = RunOptions(
            kube=common.KubeOptions(namespace, context, kubeconfig),
            targets=targets or [],
            command=common.dash_command(ctx),
            selector=selector,
            all_pods=all_pods,
            max_pods=max_pods,
            container=container,
            image=image,
            profile=profile,
            fresh=fresh,
            parallel=parallel,
            timeout=timeout,
            max_output=max_output,
            stdin_file=stdin_file,
            script=script,
            output=output,
            reason=reason,
            record=record,
            toolbox_lifetime=toolbox_lifetime,
        )
        common.exit_with(execute(common.prepared(options)))


def read_input_file(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None


def run_command(options: RunOptions) -> int:
    """Run on every target pod, rendering each result as it comes (or all at the end for JSON)."""
    request = options.request()
    out = sys.stdout
    fmt = options.output

    def show(result: RunResult) -> None:
        if fmt == "jsonl":
            _write(out, results.render_jsonl_line(result))
        elif fmt == "text":
            _write(out, results.render_text(result))

    config = config_files.effective_config(request.kubeconfig, request.context)  # with the cluster's mirrors
    done = runner.Runner(config).run(request, on_result=show)
    if fmt == "json":
        _write(out, results.render_json(done))
    sys.stderr.write(f"kdebug: {results.summary_line(done)}\n")
    if any(r.error is not None and r.error.kind == results.KIND_CANCELLED for r in done):
        return int(ExitCode.INTERRUPTED)
    return results.aggregate_exit_code(done)


def _write(stream: IO[str], text: str) -> None:
    stream.write(text)
    stream.flush()
