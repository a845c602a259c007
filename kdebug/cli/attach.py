"""`kdebug attach`: parse flags, run one debug session, render progress on stderr.

Heavy modules (kubernetes, websocket, the debugger) are imported inside the command so that
`kdebug attach --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import IO, Annotated, Any

import typer

EXAMPLES = """\
Examples:

  kdebug attach web -n demo   (a shell beside pod web's only container)

  kdebug attach deploy/shop -n demo -- echo ok   (run a command, exit with its code)

  kdebug attach -l app=api -c server   (pod by label selector, container server)

  echo 'ls /proc/1/root' | kdebug attach web   (feed a script to the debug shell)

  kdebug attach web --image gcr.io/distroless/base:debug --timeout 30s

The target's filesystem is at /proc/1/root inside the debug container.

Exit status: the remote command's, or kdebug's own codes 64-75 and 130 (docs/exit-codes.md).
"""


def register(app: typer.Typer) -> None:
    @app.command("attach", epilog=EXAMPLES)
    def attach(
        target: Annotated[
            str | None,
            typer.Argument(
                metavar="TARGET",
                show_default=False,
                help="NAME, pod/NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME or job/NAME.",
            ),
        ] = None,
        command: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="[-- COMMAND [ARGS...]]",
                show_default=False,
                help="Run this instead of the debug image's shell.",
            ),
        ] = None,
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
            typer.Option("-c", "--container", show_default=False, help="Target container in the pod."),
        ] = None,
        selector: Annotated[
            str | None,
            typer.Option("-l", "--selector", show_default=False, help="Choose the pod by label selector."),
        ] = None,
        image: Annotated[
            str | None,
            typer.Option("--image", show_default=False, help="Debug image (default: a pinned BusyBox)."),
        ] = None,
        timeout: Annotated[
            str, typer.Option("--timeout", help="How long to wait for the debug container to start.")
        ] = "2m",
        idle_timeout: Annotated[
            str, typer.Option("--idle-timeout", help="End an interactive shell left with no input this long.")
        ] = "1h",
        reuse: Annotated[
            bool | None,
            typer.Option(
                "--reuse/--no-reuse",
                show_default=False,
                help="Attach to a running kdebug shell with the same image and target "
                "(default: on for interactive shells).",
            ),
        ] = None,
    ) -> None:
        """Open a shell (or run COMMAND) in an ephemeral debug container beside TARGET's container."""
        code = run_attach(
            target=target,
            command=command or [],
            namespace=namespace,
            context=context,
            kubeconfig=kubeconfig,
            container=container,
            selector=selector,
            image=image,
            timeout=timeout,
            idle_timeout=idle_timeout,
            reuse=reuse,
        )
        if code:
            raise typer.Exit(code)


def run_attach(**options: Any) -> int:
    from kdebug import terminal
    from kdebug.debugger import AttachRequest, Debugger, LocalStreams
    from kdebug.durations import parse_duration
    from kdebug.errors import UsageError

    if not options["target"] and not options["selector"]:
        raise UsageError("missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)")
    if options["selector"] and options["target"]:
        # with -l there is no TARGET: `-l app=x -- cmd args` puts cmd where TARGET would be
        options = {**options, "command": [options["target"], *options["command"]], "target": None}
    request = AttachRequest(
        target=options["target"],
        selector=options["selector"],
        namespace=options["namespace"],
        context=options["context"],
        kubeconfig=options["kubeconfig"],
        container=options["container"],
        image=options["image"],
        command=list(options["command"]),
        timeout_s=parse_duration(options["timeout"], option="--timeout"),
        idle_timeout_s=parse_duration(options["idle_timeout"], option="--idle-timeout"),
        reuse=options["reuse"],
    )
    stdin_fd = terminal.stdin_fd()
    local = LocalStreams(
        stdin_fd=stdin_fd,
        stdout=_binary(sys.stdout),
        stderr=_binary(sys.stderr),
        stdin_is_tty=terminal.is_terminal(stdin_fd),
        stdout_is_tty=terminal.is_terminal(sys.stdout),
        stdin_has_data=terminal.stdin_has_data_source(stdin_fd),
    )
    renderer = ProgressRenderer(sys.stderr)
    try:
        return Debugger(progress=renderer).run(request, local)
    finally:
        renderer.stop()


def _binary(stream: IO[str]) -> IO[bytes]:
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else _TextAsBinary(stream)


class _TextAsBinary:
    """For streams without a byte buffer (some test captures): decode and write text."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.stream.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self.stream.flush()


class ProgressRenderer:
    """Turns debugger progress events into stderr lines and a spinner (spinner only on a terminal)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.status: Any = None
        self.console: Any = None

    def __call__(self, event: str, **fields: Any) -> None:
        handler = getattr(self, f"_on_{event}", None)
        if handler:
            handler(**fields)

    def _line(self, text: str) -> None:
        self._pause()
        self.stream.write(f"kdebug: {text}\n")
        self.stream.flush()

    def _on_target(self, pod: str, container: str, via: str, namespace: str) -> None:
        if via:
            self._line(f"{via} -> pod {namespace}/{pod}")

    def _on_reusing(self, container: str, pod: str) -> None:
        self._line(
            f"reusing the running debug container {container} in pod {pod} (--no-reuse adds a new one)"
        )

    def _on_adding(self, container: str, image: str, pod: str) -> None:
        self._spin(f"adding debug container {container} ({image}) to pod {pod}")

    def _on_waiting(self, container: str, state: str) -> None:
        self._spin(f"waiting for {container}: {state}")

    def _on_banner(self, **fields: Any) -> None:
        self._pause()
        verb = "attached to" if fields.get("reused") else "debug container"
        self._line(f"pod {fields['namespace']}/{fields['pod']}, target container {fields['target']}")
        self._line(f"{verb} {fields['container']}, image {fields['image']}")
        self._line(f"the target's filesystem is at {fields['target_root']}")

    def _spin(self, text: str) -> None:
        from kdebug.terminal import is_terminal

        if not is_terminal(self.stream):
            return
        if self.status is None:
            from rich.console import Console

            self.console = Console(file=self.stream)
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def _pause(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def stop(self) -> None:
        self._pause()
