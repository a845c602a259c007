"""`kdebug run`: run one command beside the target container in one pod or many, collect the results.

Heavy modules (kubernetes, websocket, the runner) are imported inside the command so that
`kdebug run --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Annotated, Any

import click
import typer
from typer.core import TyperCommand

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
COMMAND_META = "kdebug_command"


class DashDashCommand(TyperCommand):
    """Keeps what follows `--` as the remote COMMAND (click would mix it into the TARGETs)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            split = args.index("--")
            ctx.meta[COMMAND_META] = args[split + 1 :]
            args = args[:split]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    @app.command("run", cls=DashDashCommand, epilog=EXAMPLES)
    def run(
        ctx: typer.Context,
        targets: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="TARGET... [-- COMMAND [ARGS...]]",
                show_default=False,
                help="NAME, pod/NAME or KIND/NAME (several allowed); the command follows --.",
            ),
        ] = None,
        selector: Annotated[
            str | None,
            typer.Option("-l", "--selector", show_default=False, help="Choose pods by label selector."),
        ] = None,
        all_pods: Annotated[
            bool, typer.Option("--all", help="With -l: every matching Running pod, not just one.")
        ] = False,
        max_pods: Annotated[
            int, typer.Option("--max-pods", help="Safety cap on the number of pods; more is an error.")
        ] = 50,
        namespace: Annotated[
            str | None,
            typer.Option(
                "-n", "--namespace", show_default=False, help="Namespace (default: from kubeconfig)."
            ),
        ] = None,
        context: Annotated[
            str | None,
            typer.Option("--context", show_default=False, help="Kubeconfig context (default: current)."),
        ] = None,
        kubeconfig: Annotated[
            str | None,
            typer.Option("--kubeconfig", show_default=False, help="Kubeconfig file (default: $KUBECONFIG)."),
        ] = None,
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
        options = dict(
            targets=targets or [],
            command=list(ctx.meta.get(COMMAND_META, [])),
            selector=selector,
            all_pods=all_pods,
            max_pods=max_pods,
            namespace=namespace,
            context=context,
            kubeconfig=kubeconfig,
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
        code = run_command(options)
        if code:
            raise typer.Exit(code)


def read_input_file(path: Path, option: str) -> bytes:
    from kdebug.errors import UsageError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None


def build_request(options: dict[str, Any]) -> Any:
    """Flags -> RunRequest, with every usage check done before the cluster is contacted."""
    from kdebug.automation.runner import Command, RunRequest
    from kdebug.durations import parse_duration
    from kdebug.errors import UsageError
    from kdebug.sessions.recorder import parse_size

    if options["output"] not in OUTPUT_FORMATS:
        raise UsageError(f"-o {options['output']}: choose one of {', '.join(OUTPUT_FORMATS)}")
    if options["script"] is not None and options["command"]:
        raise UsageError("give either --script FILE or -- COMMAND, not both")
    if options["parallel"] < 1:
        raise UsageError("--parallel must be at least 1")
    if options["max_pods"] < 1:
        raise UsageError("--max-pods must be at least 1")
    if options["script"] is not None:
        code = read_input_file(options["script"], "--script").decode("utf-8", "replace")
        command = Command(shell_code=code)
    elif options["command"]:
        command = Command(argv=list(options["command"]))
    else:
        raise UsageError(
            "missing COMMAND: put it after --, e.g. `kdebug run web -- ls /`, or use --script FILE"
        )
    if options["stdin_file"] is not None:
        if options["fresh"]:
            raise UsageError("--fresh cannot feed stdin (--stdin-file): leave out --fresh to use the toolbox")
        stdin = read_input_file(options["stdin_file"], "--stdin-file")
        command = Command(command.argv, command.shell_code, stdin)
    return RunRequest(
        command=command,
        targets=list(options["targets"]),
        selector=options["selector"],
        all_pods=options["all_pods"],
        max_pods=options["max_pods"],
        namespace=options["namespace"],
        context=options["context"],
        kubeconfig=options["kubeconfig"],
        container=options["container"],
        image=options["image"],
        profile=options["profile"],
        fresh=options["fresh"],
        parallel=options["parallel"],
        timeout_s=parse_duration(options["timeout"], option="--timeout"),
        max_output=parse_size(options["max_output"], option="--max-output"),
        record=options["record"],
        reason=options["reason"],
        lifetime_s=int(parse_duration(options["toolbox_lifetime"], option="--toolbox-lifetime")),
    )


def run_command(options: dict[str, Any]) -> int:
    from kdebug.automation import results as runresult
    from kdebug.automation.runner import Runner
    from kdebug.config import effective_config
    from kdebug.errors import ExitCode

    request = build_request(options)
    out = sys.stdout
    fmt = options["output"]

    def show(result: runresult.RunResult) -> None:
        if fmt == "jsonl":
            _write(out, runresult.render_jsonl_line(result))
        elif fmt == "text":
            _write(out, runresult.render_text(result))

    config = effective_config(request.kubeconfig, request.context)  # with the cluster's mirrors
    results = Runner(config).run(request, on_result=show)
    if fmt == "json":
        _write(out, runresult.render_json(results))
    sys.stderr.write(f"kdebug: {runresult.summary_line(results)}\n")
    if any(r.error is not None and r.error.kind == runresult.KIND_CANCELLED for r in results):
        return int(ExitCode.INTERRUPTED)
    return runresult.aggregate_exit_code(results)


def _write(stream: IO[str], text: str) -> None:
    stream.write(text)
    stream.flush()
