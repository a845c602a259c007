"""`kdebug inspect`: classify every container of a pod and show the debug image kdebug would use.

Read-only: it makes no change to the cluster. Data (table, JSON, YAML) goes to stdout, progress to
stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kdebug import config as config_files
from kdebug.cli import options as common
from kdebug.errors import KdebugError, PermissionDeniedError, UsageError
from kdebug.lazy import lazy_module
from kdebug.models import ImageChoice

if TYPE_CHECKING:
    from kdebug.images.catalog import Catalog
    from kdebug.kube.api import KubeApi

catalogs = lazy_module("kdebug.images.catalog")
containers = lazy_module("kdebug.debug.container")
ids = lazy_module("kdebug.debug.ids")
requests = lazy_module("kdebug.debug.request")
spec = lazy_module("kdebug.debug.spec")
inspection = lazy_module("kdebug.images.inspection")
kube_client = lazy_module("kdebug.kube.client")
resolve = lazy_module("kdebug.kube.resolve")
decision_making = lazy_module("kdebug.security.decision")
rich_console = lazy_module("rich.console")
rich_table = lazy_module("rich.table")
yaml = lazy_module("yaml")

EXAMPLES = """\
Examples:

  kdebug inspect web -n demo   (what runs in pod web, and which debug image kdebug picks)

  kdebug inspect deploy/shop -c server -o json   (stable JSON, docs/inspect-json.md)

  kdebug inspect api --spec   (also the exact ephemeral container `attach` would add)

  kdebug inspect web --no-registry   (classify from names and digests only, no registry request)

Exit status: 0 on success; 64-75 for kdebug's own errors (docs/exit-codes.md).
"""
OUTPUTS = ("table", "json", "yaml")
SECURITY_FIELDS = (
    "profile",
    "reason",
    "level",
    "version",
    "runAsUser",
    "runAsGroup",
    "procRootReadable",
    "error",
    "hint",
)


@dataclass
class InspectOptions:
    """The flags of `kdebug inspect`; `complete()` also reads the config file and the image catalog."""

    kube: common.KubeOptions = field(default_factory=common.KubeOptions)
    target: str | None = None
    container: str | None = None
    selector: str | None = None
    output: str = "table"
    spec: bool = False
    image: str | None = None
    no_registry: bool = False
    platform: str | None = None

    def complete(self) -> None:
        self.kube.complete()

    def validate(self) -> None:
        if self.output not in OUTPUTS:
            raise UsageError(f"--output must be one of {', '.join(OUTPUTS)}, not {self.output!r}")
        if not self.target and not self.selector:
            raise UsageError("missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)")
        if self.target and self.selector:
            raise UsageError(f"give TARGET or -l SELECTOR, not both ({self.target!r} and -l {self.selector})")
        self.kube.validate()
        common.validate_target_names([self.target] if self.target else [], self.container, self.selector)


def register(app: typer.Typer, execute: Callable[[InspectOptions], int] | None = None) -> None:
    """Add `inspect` to `app`; `execute` runs the prepared options (tests pass one that records them)."""
    execute = execute or run_inspect

    @app.command("inspect", epilog=EXAMPLES)
    def inspect(
        target: common.Target = None,
        namespace: common.Namespace = None,
        context: common.Context = None,
        kubeconfig: common.Kubeconfig = None,
        container: Annotated[
            str | None, common.container_option("Target container (marked in the output).")
        ] = None,
        selector: common.Selector = None,
        output: Annotated[str, typer.Option("-o", "--output", help="table, json or yaml.")] = "table",
        spec: Annotated[
            bool, typer.Option("--spec", help="Also show the ephemeral container spec `attach` would send.")
        ] = False,
        image: Annotated[
            str | None,
            typer.Option(
                "--image",
                show_default=False,
                help="Debug image to plan with (checked against allowed_images).",
            ),
        ] = None,
        no_registry: Annotated[
            bool,
            typer.Option("--no-registry", help="Do not ask registries: classify from image names only."),
        ] = False,
        platform: Annotated[
            str | None,
            typer.Option(
                "--platform",
                show_default=False,
                help="OS/ARCH to resolve image indexes for (default: the node's).",
            ),
        ] = None,
    ) -> None:
        """Show each container's image, its classification with evidence, and the debug image kdebug picks."""
        options = InspectOptions(
            kube=common.KubeOptions(namespace, context, kubeconfig),
            target=target,
            container=container,
            selector=selector,
            output=output,
            spec=spec,
            image=image,
            no_registry=no_registry,
            platform=platform,
        )
        common.exit_with(execute(common.prepared(options)))


def run_inspect(options: InspectOptions) -> int:
    config = config_files.effective_config(options.kube.kubeconfig, options.kube.context)
    catalog = catalogs.load_catalog(config)
    if options.image:
        inspection.check_override_allowed(config, options.image)  # before any request
    report = build_report(options, config, catalog)
    render(report, options.output, sys.stdout)
    return 0


def build_report(options: InspectOptions, config: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    kube = kube_client.connect(options.kube.kubeconfig, options.kube.context, options.kube.namespace)
    namespace = options.kube.namespace or kube.namespace
    resolved = resolve.resolve_target(kube, namespace, options.target, options.selector, options.container)
    if options.platform:
        catalog = replace(catalog, registry=replace(catalog.registry, platform=options.platform))
    registry = None if options.no_registry else inspection.make_registry_client(catalog)
    progress = _stderr_progress
    auths = (
        inspection.pull_secret_auths(resolved.pod, inspection.secret_getter(kube), progress)
        if registry is not None
        else {}
    )
    node = resolve.node_of(kube, resolved.pod) if not catalog.registry.platform else None
    report = inspection.inspect_pod(
        resolved.pod,
        resolved.container,
        catalog,
        registry,
        inspection.pod_platform(resolved.pod, catalog, node),
        auths,
        options.image,
        progress,
    )
    if resolved.via:
        report["pod"]["via"] = resolved.via
    report["security"] = security_report(kube, resolved.pod, resolved.container, report)
    if options.spec:
        report["spec"] = planned_spec(kube, resolved.pod, resolved.container, report)
    return report


def security_report(
    kube: KubeApi, pod: dict[str, Any], container: str, report: dict[str, Any]
) -> dict[str, Any]:
    """The profile `attach --profile auto` would use for the target, and why (docs/inspect-json.md)."""
    debug = next(c for c in report["containers"] if c["name"] == container)["debugImage"]
    choice = None
    if debug["image"] is not None:
        choice = ImageChoice(
            image=debug["image"],
            shell=list(debug["shell"] or ["sh"]),
            reason=debug["reason"] or "",
            run_as_user=debug["runAsUser"],
            run_as_group=debug["runAsGroup"],
        )
    empty = dict.fromkeys(SECURITY_FIELDS)
    try:
        decision = decision_making.decide_security(kube, pod, container, "auto", False, choice)
    except KdebugError as exc:
        return {**empty, "error": exc.message, "hint": exc.hint}
    return {
        **empty,
        "profile": decision.profile,
        "reason": decision.reason,
        "level": decision.level,
        "version": decision.version,
        "runAsUser": decision.run_as_user,
        "runAsGroup": decision.run_as_group,
        "procRootReadable": decision.proc_root_readable,
    }


def planned_spec(
    kube: KubeApi, pod: dict[str, Any], container: str, report: dict[str, Any]
) -> dict[str, Any] | None:
    """The ephemeral container an interactive `attach` would add (its name and session id are per run),
    built by the same builder and security decision as attach; None when attach would add none (the
    namespace refuses every profile: the report's security error says why)."""
    debug = next(c for c in report["containers"] if c["name"] == container)["debugImage"]
    if debug["image"] is None:
        return None
    choice = ImageChoice(
        image=debug["image"],
        shell=list(debug["shell"] or ["sh"]),
        reason=debug["reason"] or "",
        run_as_user=debug["runAsUser"],
        run_as_group=debug["runAsGroup"],
    )
    plan = requests.interactive_shell_plan(choice)
    options = {
        "name": spec.unique_container_name(pod, ids.new_suffix),
        "command": plan.command,
        "session_id": "<per-session>",
        "owner": "<per-user>",  # attach puts its Kubernetes user in KDEBUG_USER
        "stdin": plan.stdin,
        "tty": plan.tty,
    }
    try:
        return containers.build_debug_container(kube, pod, container, choice, **options).container
    except PermissionDeniedError:
        return None


def _stderr_progress(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def render(report: dict[str, Any], output: str, stream: Any) -> None:
    if output == "json":
        stream.write(json.dumps(report, indent=2) + "\n")
    elif output == "yaml":
        stream.write(yaml.safe_dump(report, sort_keys=False))
    else:
        render_table(report, stream)


def render_table(report: dict[str, Any], stream: Any) -> None:
    # a pipe gets a wide table (no terminal width to respect); a terminal gets its own width
    width = None if getattr(stream, "isatty", lambda: False)() else 160
    console = rich_console.Console(file=stream, width=width, soft_wrap=False)
    pod = report["pod"]
    console.print(
        f"pod {pod['namespace']}/{pod['name']}  node {pod['node'] or '-'}  platform {report['platform']}"
    )
    table = rich_table.Table(show_lines=True)
    for column in ("container", "image", "classification", "shell", "user", "debug image"):
        table.add_column(column, overflow="fold")
    for item in report["containers"]:
        table.add_row(
            _name_cell(item),
            _image_cell(item),
            _class_cell(item),
            _shell_cell(item),
            item["user"] or "?",
            _debug_cell(item),
        )
    console.print(table)
    console.print(_security_line(report.get("security")), markup=False, highlight=False)
    for warning in _warnings(report):
        console.print(f"warning: {warning}", markup=False, highlight=False)
    if report.get("spec") is not None:
        console.print("ephemeral container `attach` would add:")
        console.print(json.dumps(report["spec"], indent=2), markup=False, highlight=False)


def _security_line(security: dict[str, Any] | None) -> str:
    if not security:
        return "security profile: unknown"
    if security["error"]:
        return f"security profile: refused: {security['error']}"
    return f"security profile (--profile auto): {security['reason']}"


def _name_cell(item: dict[str, Any]) -> str:
    return f"{item['name']} (target)" if item["target"] else item["name"]


def _image_cell(item: dict[str, Any]) -> str:
    digest = item["digest"]
    return item["image"] + (f"\n{digest[:19]}…" if digest else "")


def _class_cell(item: dict[str, Any]) -> str:
    c = item["classification"]
    head = " ".join(
        filter(None, [c["kind"], c["flavour"], c["release"], "nonroot" if c["nonroot"] else None])
    )
    lines = [f"{head} ({c['confidence']})"] + [f"· {e['source']}: {e['detail']}" for e in c["evidence"]]
    return "\n".join(lines).replace("[", "\\[")


def _shell_cell(item: dict[str, Any]) -> str:
    shell = item["classification"]["shell"]
    if item["hasShell"] is None:
        return "unknown"
    return f"yes: /{shell}" if item["hasShell"] else "no"


def _debug_cell(item: dict[str, Any]) -> str:
    debug = item["debugImage"]
    if debug["error"]:
        return f"refused: {debug['error']}".replace("[", "\\[")
    user = f"\nruns as {debug['runAsUser']}:{debug['runAsGroup']}" if debug["runAsUser"] is not None else ""
    return f"{debug['image']} {' '.join(debug['shell'])}{user}\n{debug['reason']}".replace("[", "\\[")


def _warnings(report: dict[str, Any]) -> list[str]:
    found = []
    for item in report["containers"]:
        found += [f"{item['name']}: {w}" for w in item["classification"]["warnings"]]
        found += [f"{item['name']}: {w}" for w in item["debugImage"]["warnings"]]
    return found
