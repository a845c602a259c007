"""`kdebug runbook run|validate`: run a YAML runbook's steps in each target pod, or check the file.

The file format is documented in docs/runbooks.md; examples are in examples/runbooks/.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

RUN_EXAMPLES = """\
Examples:

  kdebug runbook run examples/runbooks/network-checks.yaml

  kdebug runbook run examples/runbooks/proc-env-ports.yaml api -n demo -o markdown > ticket.md

  kdebug runbook run checks.yaml -l app=shop --all -o json

TARGETs (or -l) given here replace the runbook's own `target`/`selector`.

Exit status: 0 when every step passed in every pod; 70 when a step failed, timed out or could not
run; 64 for an invalid runbook or flags; 130 when interrupted.
"""

VALIDATE_EXAMPLES = """\
Examples:

  kdebug runbook validate examples/runbooks/network-checks.yaml

Problems are printed as FILE:LINE: message, one per line (exit status 64).
"""

REPORT_FORMATS = ("text", "json", "markdown")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="runbook",
        help="Run or check runbook files (YAML lists of diagnostic steps).",
        no_args_is_help=True,
    )

    @group.command("run", epilog=RUN_EXAMPLES)
    def run(
        file: Annotated[Path, typer.Argument(metavar="FILE.yaml", help="The runbook file.")],
        targets: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="[TARGET...]",
                show_default=False,
                help="Pods to run in (default: the runbook's target).",
            ),
        ] = None,
        selector: Annotated[
            str | None,
            typer.Option("-l", "--selector", show_default=False, help="Choose pods by label selector."),
        ] = None,
        all_pods: Annotated[
            bool | None,
            typer.Option("--all", show_default=False, help="With -l: every matching Running pod."),
        ] = None,
        max_pods: Annotated[int, typer.Option("--max-pods", help="Safety cap on the number of pods.")] = 50,
        namespace: Annotated[
            str | None,
            typer.Option(
                "-n", "--namespace", show_default=False, help="Namespace (default: runbook, then kubeconfig)."
            ),
        ] = None,
        context: Annotated[
            str | None, typer.Option("--context", show_default=False, help="Kubeconfig context.")
        ] = None,
        kubeconfig: Annotated[
            str | None,
            typer.Option("--kubeconfig", show_default=False, help="Kubeconfig file (default: $KUBECONFIG)."),
        ] = None,
        image: Annotated[
            str | None,
            typer.Option(
                "--image", show_default=False, help="Debug image (default: the runbook's, else chosen)."
            ),
        ] = None,
        parallel: Annotated[
            int | None,
            typer.Option(
                "--parallel", show_default=False, help="Pods worked on at the same time (default 10)."
            ),
        ] = None,
        output: Annotated[str, typer.Option("-o", "--output", help="text, json or markdown.")] = "text",
        reason: Annotated[
            str | None,
            typer.Option(
                "--reason", show_default=False, help="Why (ticket or incident id), kept in the audit log."
            ),
        ] = None,
        record: Annotated[
            bool, typer.Option("--record/--no-record", help="Keep output transcripts in the audit log.")
        ] = True,
    ) -> None:
        """Run each step of FILE.yaml in every target pod and report status, duration and output."""
        code = run_runbook_file(
            dict(
                file=file,
                targets=targets or [],
                selector=selector,
                all_pods=all_pods,
                max_pods=max_pods,
                namespace=namespace,
                context=context,
                kubeconfig=kubeconfig,
                image=image,
                parallel=parallel,
                output=output,
                reason=reason,
                record=record,
            )
        )
        if code:
            raise typer.Exit(code)

    @group.command("validate", epilog=VALIDATE_EXAMPLES)
    def validate(
        file: Annotated[Path, typer.Argument(metavar="FILE.yaml", help="The runbook file.")],
    ) -> None:
        """Check FILE.yaml against the runbook schema (docs/runbooks.md); problems with line numbers."""
        from kdebug.automation.runbook import RunbookError
        from kdebug.errors import ExitCode

        try:
            book = load_runbook(file)
        except RunbookError as exc:
            for problem in exc.problems:
                sys.stderr.write(f"error: {problem}\n")
            raise typer.Exit(int(ExitCode.USAGE)) from None
        noun = "step" if len(book.steps) == 1 else "steps"
        sys.stdout.write(f"{file}: ok, runbook {book.name!r} with {len(book.steps)} {noun}\n")

    app.add_typer(group)


def load_runbook(path: Path) -> Any:
    from kdebug.automation.runbook import parse_runbook
    from kdebug.errors import UsageError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"runbook {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_runbook(text, str(path))


def build_request(book: Any, options: dict[str, Any]) -> Any:
    from kdebug.automation.runner import DEFAULT_PARALLEL, Command, RunRequest

    from_cli = bool(options["targets"] or options["selector"])
    selector = options["selector"] if from_cli else book.selector
    all_pods = options["all_pods"] if options["all_pods"] is not None else (book.all_pods and not from_cli)
    return RunRequest(
        command=Command(),
        targets=list(options["targets"] if from_cli else book.targets),
        selector=selector,
        all_pods=bool(all_pods),
        max_pods=options["max_pods"],
        namespace=options["namespace"] or book.namespace,
        context=options["context"],
        kubeconfig=options["kubeconfig"],
        container=book.container,
        image=options["image"] or book.image,
        profile=book.profile,
        parallel=options["parallel"] or book.parallel or DEFAULT_PARALLEL,
        record=options["record"],
        reason=options["reason"],
    )


def run_runbook_file(options: dict[str, Any]) -> int:
    from kdebug.automation import runbook
    from kdebug.automation.runner import Runner, run_runbook
    from kdebug.config import effective_config
    from kdebug.errors import ExitCode, UsageError

    if options["output"] not in REPORT_FORMATS:
        raise UsageError(f"-o {options['output']}: choose one of {', '.join(REPORT_FORMATS)}")
    book = load_runbook(options["file"])
    request = build_request(book, options)
    config = effective_config(request.kubeconfig, request.context)  # with the cluster's mirrors
    reports = run_runbook(Runner(config), book, request)
    render = {"text": runbook.render_text, "json": runbook.render_json, "markdown": runbook.render_markdown}[
        options["output"]
    ]
    sys.stdout.write(render(book, reports))
    sys.stdout.flush()
    statuses = {outcome.status for report in reports for outcome in report.steps}
    if runbook.CANCELLED in statuses:
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK) if all(report.ok for report in reports) else int(ExitCode.SOME_FAILED)
