"""The kubectl-style options several commands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

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
Kubeconfig = Annotated[
    str | None,
    typer.Option("--kubeconfig", show_default=False, help="Kubeconfig file (default: $KUBECONFIG)."),
]


def container_option(help_text: str) -> typer.models.OptionInfo:
    """`-c/--container`, with the command's own wording of what the container is for."""
    return typer.Option("-c", "--container", show_default=False, help=help_text)
