"""`kdebug runbook run|validate`: run a YAML runbook's steps in each target pod, or check the file.

The file format is documented in docs/runbooks.md; examples are in examples/runbooks/.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kdebug import config as config_files
from kdebug.cli import options as common
from kdebug.console.sanitize import terminal_safe
from kdebug.errors import ExitCode, KdebugError, UsageError
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    from kdebug.automation.runbook import Runbook
    from kdebug.automation.runner import RunRequest

runbooks = lazy_module("kdebug.automation.runbook")
runner = lazy_module("kdebug.automation.runner")
catalogs = lazy_module("kdebug.images.catalog")
references = lazy_module("kdebug.images.reference")
selection = lazy_module("kdebug.images.selection")

RUN_EXAMPLES = """\
Examples:

  kdebug runbook run examples/runbooks/network-checks.yaml

  kdebug runbook run examples/runbooks/proc-env-ports.yaml api -n demo -o markdown > ticket.md

  kdebug runbook run checks.yaml -l app=shop --all -o json

TARGETs (or -l) given here replace the runbook's own `target`/`selector`.

A runbook may come from someone else: a `profile:` that adds capabilities or is privileged
(general, netadmin, sysadmin) runs only with --allow-profile PROFILE, and an `image:` outside the
catalog and the allowlist only with --allow-image IMAGE; what was allowed is printed and recorded.

Exit status: 0 when every step passed in every pod; 70 when a step failed, timed out or could not
run; 64 for an invalid runbook or flags; 130 when interrupted.
"""

VALIDATE_EXAMPLES = """\
Examples:

  kdebug runbook validate examples/runbooks/network-checks.yaml

Problems are printed as FILE:LINE: message, one per line (exit status 64).
"""

REPORT_FORMATS = ("text", "json", "markdown")


@dataclass
class RunbookOptions:
    """The flags of `kdebug runbook run`; TARGETs or -l given here replace the runbook's own."""

    file: Path
    kube: common.KubeOptions = field(default_factory=common.KubeOptions)
    targets: list[str] = field(default_factory=list)
    selector: str | None = None
    all_pods: bool | None = None
    max_pods: int = 50
    image: str | None = None
    parallel: int | None = None
    output: str = "text"
    reason: str | None = None
    record: bool = True
    allow_profiles: list[str] = field(default_factory=list)
    allow_images: list[str] = field(default_factory=list)

    def complete(self) -> None:
        pass  # the runbook's namespace comes before the kubeconfig's: resolved when the file is read

    def validate(self) -> None:
        if self.output not in REPORT_FORMATS:
            raise UsageError(f"-o {self.output}: choose one of {', '.join(REPORT_FORMATS)}")
        if self.parallel is not None and self.parallel < 1:
            raise UsageError("--parallel must be at least 1")
        if self.max_pods < 1:
            raise UsageError("--max-pods must be at least 1")
        self.kube.validate()  # only -n here: the runbook's own namespace is checked when the file is read
        common.validate_target_names(self.targets, selector=self.selector)


def register(app: typer.Typer, execute: Callable[[RunbookOptions], int] | None = None) -> None:
    """Add `runbook run|validate` to `app`; `execute` runs the prepared options of `runbook run`."""
    execute = execute or run_runbook_file
    group = typer.Typer(
        name="runbook",
        help="Run or check runbook files (YAML lists of diagnostic steps).",
        no_args_is_help=True,
        rich_markup_mode=None,
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
        selector: common.PodsSelector = None,
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
        context: common.Context = None,
        kubeconfig: common.Kubeconfig = None,
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
        allow_profiles: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-profile",
                show_default=False,
                metavar="PROFILE",
                help="Allow the file's profile when it raises privileges (general, netadmin, sysadmin).",
            ),
        ] = None,
        allow_images: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-image",
                show_default=False,
                metavar="IMAGE",
                help="Allow the file's image when it is not in the catalog or the allowlist.",
            ),
        ] = None,
    ) -> None:
        """Run each step of FILE.yaml in every target pod and report status, duration and output."""
        options = RunbookOptions(
            file=file,
            kube=common.KubeOptions(namespace, context, kubeconfig),
            targets=targets or [],
            selector=selector,
            all_pods=all_pods,
            max_pods=max_pods,
            image=image,
            parallel=parallel,
            output=output,
            reason=reason,
            record=record,
            allow_profiles=allow_profiles or [],
            allow_images=allow_images or [],
        )
        common.exit_with(execute(common.prepared(options)))

    @group.command("validate", epilog=VALIDATE_EXAMPLES)
    def validate(
        file: Annotated[Path, typer.Argument(metavar="FILE.yaml", help="The runbook file.")],
    ) -> None:
        """Check FILE.yaml against the runbook schema (docs/runbooks.md); problems with line numbers."""
        try:
            book = load_runbook(file)
        except runbooks.RunbookError as exc:
            for problem in exc.problems:  # quoted from the file, which may hold escape sequences
                sys.stderr.write(f"error: {terminal_safe(problem, one_line=True)}\n")
            raise typer.Exit(int(ExitCode.USAGE)) from None
        noun = "step" if len(book.steps) == 1 else "steps"
        sys.stdout.write(f"{file}: ok, runbook {book.name!r} with {len(book.steps)} {noun}\n")

    app.add_typer(group)


def load_runbook(path: Path) -> Runbook:
    """The parsed file; more than MAX_RUNBOOK_BYTES is refused before it is read whole or parsed."""
    limit = runbooks.MAX_RUNBOOK_BYTES
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
            size = len(data) if len(data) <= limit else max(limit + 1, os.fstat(file.fileno()).st_size)
        if size > limit:
            raise runbooks.RunbookError([runbooks.size_problem(str(path), size)])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"runbook {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return runbooks.parse_runbook(text, str(path))


def allowed_escalations(book: Runbook, options: RunbookOptions, config: dict) -> tuple[str, ...]:
    """What the file asks for beyond `auto`, each allowed by its flag (else UsageError, before any
    request); prints one line per allowance and returns them for the audit record."""
    catalog = catalogs.load_catalog(config)
    if book.image is not None and options.image is None:
        try:  # before anything quotes it as allowed
            references.parse_image_ref(book.image)
        except UsageError as exc:
            raise UsageError(f"{options.file}:{book.lines.get('image', 1)}: {exc.message}") from None

    def in_catalog(image: str) -> bool:
        shipped = {catalog.busybox_image, *(family.image for family in catalog.families if family.image)}
        if image in shipped:
            return True
        if catalog.allowed_images is None:  # no allowlist: nothing vouches for the image
            return False
        try:
            selection.sent_image(image, catalog)
        except KdebugError:
            return False
        return True

    allowed: list[str] = []
    for escalation in runbooks.escalations(book, in_catalog, cli_image=options.image is not None):
        kind, value = escalation.flag.split(" ", 1)
        given = options.allow_profiles if kind == "--allow-profile" else options.allow_images
        if value not in given:
            raise UsageError(escalation.refusal(str(options.file)))
        line = f"{options.file} asks for {escalation.what}: allowed by {escalation.flag}"
        sys.stderr.write(f"kdebug: {terminal_safe(line, one_line=True)}\n")  # the image is the file's text
        allowed.append(escalation.record())
    return tuple(allowed)


def build_request(book: Runbook, options: RunbookOptions) -> RunRequest:
    from_cli = bool(options.targets or options.selector)
    selector = options.selector if from_cli else book.selector
    all_pods = options.all_pods if options.all_pods is not None else (book.all_pods and not from_cli)
    return runner.RunRequest(
        command=runner.Command(),
        targets=list(options.targets if from_cli else book.targets),
        selector=selector,
        all_pods=bool(all_pods),
        max_pods=options.max_pods,
        namespace=options.kube.namespace or book.namespace,
        context=options.kube.context,
        kubeconfig=options.kube.kubeconfig,
        container=book.container,
        image=options.image or book.image,
        profile=book.profile,
        parallel=options.parallel or book.parallel or runner.DEFAULT_PARALLEL,
        record=options.record,
        reason=options.reason,
    )


def run_runbook_file(options: RunbookOptions) -> int:
    book = load_runbook(options.file)
    request = build_request(book, options)
    config = config_files.effective_config(request.kubeconfig, request.context)  # with the cluster's mirrors
    request = dataclasses.replace(request, allowed=allowed_escalations(book, options, config))
    reports = runner.run_runbook(runner.Runner(config), book, request)
    render = {
        "text": runbooks.render_text,
        "json": runbooks.render_json,
        "markdown": runbooks.render_markdown,
    }[options.output]
    sys.stdout.write(render(book, reports))
    sys.stdout.flush()
    statuses = {outcome.status for report in reports for outcome in report.steps}
    if runbooks.CANCELLED in statuses:
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK) if all(report.ok for report in reports) else int(ExitCode.SOME_FAILED)
