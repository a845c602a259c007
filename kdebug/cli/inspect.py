"""`kdebug inspect`: classify every container of a pod and show the debug image kdebug would use.

Read-only: it makes no change to the cluster. Data (table, JSON, YAML) goes to stdout, progress to
stderr. Heavy modules are imported inside the command so `kdebug --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kdebug.cli import options as common

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


def register(app: typer.Typer) -> None:
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
        run_inspect(
            target=target,
            namespace=namespace,
            context=context,
            kubeconfig=kubeconfig,
            container=container,
            selector=selector,
            output=output,
            spec=spec,
            image=image,
            no_registry=no_registry,
            platform=platform,
        )


def run_inspect(**options: Any) -> int:
    from kdebug.config import effective_config
    from kdebug.errors import UsageError
    from kdebug.images.catalog import load_catalog
    from kdebug.images.inspection import check_override_allowed

    if options["output"] not in OUTPUTS:
        raise UsageError(f"--output must be one of {', '.join(OUTPUTS)}, not {options['output']!r}")
    if not options["target"] and not options["selector"]:
        raise UsageError("missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)")
    config = effective_config(options["kubeconfig"], options["context"])
    catalog = load_catalog(config)
    if options["image"]:
        check_override_allowed(config, options["image"])  # before any request
    report = build_report(options, config, catalog)
    render(report, options["output"], sys.stdout)
    return 0


def build_report(options: dict[str, Any], config: dict[str, Any], catalog: Any) -> dict[str, Any]:
    from dataclasses import replace

    from kdebug.images.inspection import (
        inspect_pod,
        make_registry_client,
        pod_platform,
        pull_secret_auths,
        secret_getter,
    )
    from kdebug.kube.client import connect
    from kdebug.kube.resolve import node_of, resolve_target

    kube = connect(options["kubeconfig"], options["context"], options["namespace"])
    namespace = options["namespace"] or kube.namespace
    resolved = resolve_target(kube, namespace, options["target"], options["selector"], options["container"])
    if options["platform"]:
        catalog = replace(catalog, registry=replace(catalog.registry, platform=options["platform"]))
    registry = None if options["no_registry"] else make_registry_client(catalog)
    progress = _stderr_progress
    auths = pull_secret_auths(resolved.pod, secret_getter(kube), progress) if registry is not None else {}
    node = node_of(kube, resolved.pod) if not catalog.registry.platform else None
    report = inspect_pod(
        resolved.pod,
        resolved.container,
        catalog,
        registry,
        pod_platform(resolved.pod, catalog, node),
        auths,
        options["image"],
        progress,
    )
    if resolved.via:
        report["pod"]["via"] = resolved.via
    report["security"] = security_report(kube, resolved.pod, resolved.container, report)
    if options["spec"]:
        report["spec"] = planned_spec(kube, resolved.pod, resolved.container, report)
    return report


def security_report(kube: Any, pod: dict[str, Any], container: str, report: dict[str, Any]) -> dict[str, Any]:
    """The profile `attach --profile auto` would use for the target, and why (docs/inspect-json.md)."""
    from kdebug.errors import KdebugError
    from kdebug.models import ImageChoice
    from kdebug.security.decision import decide_security

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
        decision = decide_security(kube, pod, container, "auto", False, choice)
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
    kube: Any, pod: dict[str, Any], container: str, report: dict[str, Any]
) -> dict[str, Any] | None:
    """The ephemeral container an interactive `attach` would add (its name and session id are per run),
    built by the same builder and security decision as attach; without a profile when the namespace
    would refuse every debug container (the report's security error says so)."""
    from kdebug.debug import spec
    from kdebug.debug.container import build_debug_container
    from kdebug.debug.ids import new_suffix
    from kdebug.debug.request import interactive_shell_plan
    from kdebug.errors import PermissionDeniedError
    from kdebug.models import ImageChoice

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
    plan = interactive_shell_plan(choice)
    options = {
        "name": spec.unique_container_name(pod, new_suffix),
        "command": plan.command,
        "session_id": "<per-session>",
        "stdin": plan.stdin,
        "tty": plan.tty,
    }
    try:
        return build_debug_container(kube, pod, container, choice, **options).container
    except PermissionDeniedError:
        return spec.build_ephemeral_container(
            image=choice.image,
            target=container,
            run_as_user=choice.run_as_user,
            run_as_group=choice.run_as_group,
            **options,
        )


def _stderr_progress(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def render(report: dict[str, Any], output: str, stream: Any) -> None:
    if output == "json":
        import json

        stream.write(json.dumps(report, indent=2) + "\n")
    elif output == "yaml":
        import yaml

        stream.write(yaml.safe_dump(report, sort_keys=False))
    else:
        render_table(report, stream)


def render_table(report: dict[str, Any], stream: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    # a pipe gets a wide table (no terminal width to respect); a terminal gets its own width
    width = None if getattr(stream, "isatty", lambda: False)() else 160
    console = Console(file=stream, width=width, soft_wrap=False)
    pod = report["pod"]
    console.print(
        f"pod {pod['namespace']}/{pod['name']}  node {pod['node'] or '-'}  platform {report['platform']}"
    )
    table = Table(show_lines=True)
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
        import json

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
