"""`kdebug doctor [TARGET]`: a checklist of what `attach` needs, each line pass/warn/fail with a fix.

Read-only (access reviews aside, which change nothing). The checklist goes to stdout (a table on a
terminal, plain lines otherwise, or JSON with -o json); exit 72 when any check fails. `--rbac` prints
only the Role and RoleBinding YAML that grants what `attach` needs, ready for `kubectl apply -f -`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kdebug import config as config_files
from kdebug.cli import options as common
from kdebug.errors import KdebugError, UsageError
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    from kdebug.doctor.checks import Check

doctor_checks = lazy_module("kdebug.doctor.checks")
doctor_facts = lazy_module("kdebug.doctor.facts")
permissions = lazy_module("kdebug.security.permissions")
rich_console = lazy_module("rich.console")
rich_table = lazy_module("rich.table")
rich_text = lazy_module("rich.text")

EXAMPLES = """\
Examples:

  kdebug doctor   (kubeconfig, server, identity, permissions, Pod Security of the namespace)

  kdebug doctor web -n demo   (also: can pod web take a debugger, and which one)

  kdebug doctor web -o json   (for automation: {"version": 1, "ok": ..., "checks": [...]})

  kdebug doctor -n demo --rbac | kubectl apply -f -   (a Role granting what attach needs)

Exit status: 0 when no check fails (warnings allowed); 72 when any check fails; 64 for bad flags.
"""
OUTPUTS = ("table", "json")
STATUS_STYLES = {"pass": "green", "warn": "yellow", "fail": "red"}


@dataclass
class DoctorOptions:
    """The flags of `kdebug doctor`. The kubeconfig is not completed here: doctor reports on it as a check."""

    kube: common.KubeOptions = field(default_factory=common.KubeOptions)
    target: str | None = None
    container: str | None = None
    rbac: bool = False
    output: str = "table"

    def complete(self) -> None:
        pass

    def validate(self) -> None:
        if self.output not in OUTPUTS:
            raise UsageError(f"unknown output {self.output!r}: choose one of {', '.join(OUTPUTS)}")
        self.kube.validate()
        common.validate_target_names([self.target] if self.target else [], self.container)


def register(app: typer.Typer, execute: Callable[[DoctorOptions], int] | None = None) -> None:
    """Add `doctor` to `app`; `execute` runs the prepared options (tests pass one that records them)."""
    execute = execute or run_doctor

    @app.command("doctor", epilog=EXAMPLES)
    def doctor(
        target: Annotated[
            str | None,
            typer.Argument(
                metavar="[TARGET]",
                show_default=False,
                help="Also check this pod (NAME, pod/NAME, deploy/NAME, ...) and its container.",
            ),
        ] = None,
        namespace: common.Namespace = None,
        context: common.Context = None,
        kubeconfig: common.Kubeconfig = None,
        container: Annotated[
            str | None, common.container_option("Target container (default: the first).")
        ] = None,
        rbac: Annotated[
            bool,
            typer.Option("--rbac", help="Print only a minimal Role and RoleBinding (YAML) for attach."),
        ] = False,
        output: Annotated[str, typer.Option("-o", "--output", help="table or json.")] = "table",
    ) -> None:
        """Check that kdebug can debug here (and TARGET), with a one-line fix for each problem."""
        options = DoctorOptions(
            kube=common.KubeOptions(namespace, context, kubeconfig),
            target=target,
            container=container,
            rbac=rbac,
            output=output,
        )
        common.exit_with(execute(common.prepared(options)))


def run_doctor(options: DoctorOptions) -> int:
    kube = options.kube
    request = doctor_facts.DoctorRequest(
        target=None if options.rbac else options.target,
        namespace=kube.namespace,
        context=kube.context,
        kubeconfig=kube.kubeconfig,
        container=options.container,
    )
    config, config_check = load_config_or_check(kube)
    facts = doctor_facts.gather_facts(request, config, datetime.now(UTC))
    if options.rbac:
        sys.stdout.write(rbac_yaml(facts, kube.namespace))
        return 0
    checks = ([config_check] if config_check else []) + doctor_checks.run_checks(facts)
    if options.output == "json":
        sys.stdout.write(json.dumps(doctor_checks.checks_json(checks), indent=2) + "\n")
    else:
        render_table(checks)
    return doctor_checks.overall_exit(checks)


def load_config_or_check(kube: common.KubeOptions) -> tuple[dict[str, Any], Check | None]:
    """The user config, or {} and a failing check when it cannot be read (doctor reports, not dies)."""
    try:
        return config_files.effective_config(kube.kubeconfig, kube.context), None
    except KdebugError as exc:
        message = f"kdebug config unusable: {exc.message}"
        return {}, doctor_checks.failed("config", message, "fix or remove the config file")


def rbac_yaml(facts: dict, namespace: str | None) -> str:
    """The Role for what is missing (or, when nothing is known to be missing, for all attach needs)."""
    namespace = facts.get("namespace") or namespace or "default"
    needed = permissions.required_permissions(facts.get("operation", "attach"), namespace)
    answers = facts.get("access_answers") or [None] * len(needed)
    missing = permissions.missing_permissions(needed, answers)
    username = (facts.get("identity") or {}).get("username")
    if missing:
        header = f"# grants what kdebug attach is missing in namespace {namespace}\n"
    else:
        header = f"# grants everything kdebug attach needs in namespace {namespace}\n"
    return header + permissions.role_yaml(namespace, missing or needed, subject_user=username)


def render_table(checks: list[Check]) -> None:
    if sys.stdout.isatty():
        render_rich(checks)
        return
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        sys.stdout.write(f"{str(check.status).upper():<5} {check.name:<{width}}  {check.message}\n")
        if check.fix:
            sys.stdout.write(f"{'':<5} {'':<{width}}  fix: {check.fix}\n")
    sys.stdout.flush()


def render_rich(checks: list[Check]) -> None:
    table = rich_table.Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("", "check", "result", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        status = str(check.status)
        table.add_row(
            rich_text.Text(status.upper(), style=STATUS_STYLES.get(status, "")),
            check.name,
            check.message,
            check.fix,
        )
    rich_console.Console().print(table)
