"""The kubectl-style options several commands share, declared once, and the complete/validate protocol.

Every command runs kubectl's three phases: its typer function only collects the raw flag values into
an options dataclass; `complete()` fills in what comes from the environment (the kubeconfig's
namespace, the config file) without contacting a cluster; `validate()` does the pure checks of flag
combinations and raises a one-line UsageError; then the command runs and renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Protocol, TypeVar

import click
import typer
from typer.core import TyperCommand

from kdebug.errors import KdebugError
from kdebug.kube import names
from kdebug.kube.targets import parse_target
from kdebug.lazy import lazy_module

kubeconfig_files = lazy_module("kdebug.kube.kubeconfig")

Target = Annotated[
    str | None,
    typer.Argument(
        metavar="TARGET",
        show_default=False,
        help="NAME, pod/NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME or job/NAME.",
    ),
]
Namespace = Annotated[
    str | None,
    typer.Option("-n", "--namespace", show_default=False, help="Namespace (default: from kubeconfig)."),
]
Context = Annotated[
    str | None,
    typer.Option("--context", show_default=False, help="Kubeconfig context (default: current)."),
]
Selector = Annotated[
    str | None,
    typer.Option("-l", "--selector", show_default=False, help="Choose the pod by label selector."),
]
PodsSelector = Annotated[  # `run` and `runbook`: the selector may choose several pods
    str | None,
    typer.Option("-l", "--selector", show_default=False, help="Choose pods by label selector."),
]
Kubeconfig = Annotated[
    str | None,
    typer.Option("--kubeconfig", show_default=False, help="Kubeconfig file (default: $KUBECONFIG)."),
]


def container_option(help_text: str) -> typer.models.OptionInfo:
    """`-c/--container`, with the command's own wording of what the container is for."""
    return typer.Option("-c", "--container", show_default=False, help=help_text)


class CommandOptions(Protocol):
    def complete(self) -> None: ...

    def validate(self) -> None: ...


OptionsT = TypeVar("OptionsT", bound=CommandOptions)


def prepared(options: OptionsT) -> OptionsT:
    """`options` completed from the environment and validated: ready for the command to run."""
    options.complete()
    options.validate()
    return options


def exit_with(code: int) -> None:
    """End the typer function with the command's exit code (0 returns normally)."""
    if code:
        raise typer.Exit(code)


@dataclass
class KubeOptions:
    """--namespace, --context, --kubeconfig; `complete()` takes the namespace from the kubeconfig."""

    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    # what the namespace came from, as a usage error names it; bookkeeping, not an option
    namespace_source: str = field(default="-n", compare=False, repr=False)

    def complete(self) -> None:
        if self.namespace is not None:  # `-n ''` is a bad namespace, not a missing one
            return
        try:
            paths = [path for path in kubeconfig_files.kubeconfig_paths(self.kubeconfig) if path.is_file()]
            merged = kubeconfig_files.load_merged(paths)
            _name, context = kubeconfig_files.chosen_context(merged, self.context)
        except KdebugError:
            return  # connecting reports a broken kubeconfig, with the command's own wording
        namespace = context.get("namespace")
        if namespace:  # an empty one means `default`, as for kubectl
            self.namespace = str(namespace)
            self.namespace_source = "the kubeconfig's namespace"

    def validate(self) -> None:
        """The namespace goes into every request's path: refuse a bad one before any is sent."""
        if self.namespace is not None:
            names.check_namespace(self.namespace, self.namespace_source)


def validate_target_names(
    targets: Sequence[str] = (), container: str | None = None, selector: str | None = None
) -> None:
    """TARGETs, -c and -l as the API server will check them, before any request (kdebug.kube.names)."""
    for target in targets:
        parse_target(target)
    if container is not None:
        names.check_container(container)
    if selector is not None:
        names.check_selector(selector)


COMMAND_META = "kdebug_command"


class DashDashCommand(TyperCommand):
    """Keeps what follows the first `--` as the remote COMMAND, out of click's positional arguments.

    So `attach web ls` is a usage error (an extra argument) instead of a silent `ls`, and with -l the
    command's first word cannot be mistaken for a TARGET.
    """

    command_metavar = "[-- COMMAND [ARGS...]]"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            split = args.index("--")
            ctx.meta[COMMAND_META] = args[split + 1 :]
            args = args[:split]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [*super().collect_usage_pieces(ctx), self.command_metavar]


def dash_command(ctx: click.Context) -> list[str]:
    """The words after `--` (none when there was no `--`)."""
    return list(ctx.meta.get(COMMAND_META, []))
