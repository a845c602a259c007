"""`kdebug attach`: parse flags, run one debug session, render progress on stderr.

Heavy modules (kubernetes, websocket, the debugger) are imported inside the command so that
`kdebug attach --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO, Annotated, Any

import typer

from kdebug.cli import options as common

EXAMPLES = """\
Examples:

  kdebug attach web -n demo   (a shell beside pod web's only container)

  kdebug attach deploy/shop -n demo -- echo ok   (run a command, exit with its code)

  kdebug attach -l app=api -c server   (pod by label selector, container server)

  echo 'ls /proc/1/root' | kdebug attach web   (feed a script to the debug shell)

  kdebug attach web --image gcr.io/distroless/base:debug --timeout 30s

  kdebug attach api --profile restricted --reason INC-42   (explicit profile, reason in the record)

  kdebug attach crashy --copy --copy-command 'sleep infinity'   (debug a copy of a crashing pod)

The debug image comes from the catalog (the target's image type) unless --image is given; the
security profile fits the namespace's Pod Security level (--profile auto). Every session is
recorded (kdebug sessions list). The target's filesystem is at /proc/1/root inside the debug
container ($KDEBUG_TARGET_ROOT; in a copy, /proc/<target pid>/root).

Exit status: the remote command's, or kdebug's own codes 64-75 and 130 (docs/exit-codes.md).
"""


def register(app: typer.Typer) -> None:
    @app.command("attach", epilog=EXAMPLES)
    def attach(
        target: common.Target = None,
        command: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="[-- COMMAND [ARGS...]]",
                show_default=False,
                help="Run this instead of the debug image's shell.",
            ),
        ] = None,
        namespace: common.Namespace = None,
        context: common.Context = None,
        kubeconfig: common.Kubeconfig = None,
        container: Annotated[str | None, common.container_option("Target container in the pod.")] = None,
        selector: common.Selector = None,
        image: Annotated[
            str | None,
            typer.Option(
                "--image",
                show_default=False,
                help="Debug image (default: chosen from the target's image by the catalog).",
            ),
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
        profile: Annotated[
            str,
            typer.Option(
                "--profile",
                help="Security profile: auto, general, baseline, restricted, netadmin or sysadmin.",
            ),
        ] = "auto",
        force: Annotated[
            bool, typer.Option("--force", help="Send a profile the namespace's Pod Security would reject.")
        ] = False,
        copy: Annotated[
            bool,
            typer.Option("--copy", help="Debug a copy of the pod (crash-looping or not Running pods)."),
        ] = False,
        copy_command: Annotated[
            str | None,
            typer.Option(
                "--copy-command",
                show_default=False,
                help="With --copy: the target's command in the copy, e.g. 'sleep infinity'.",
            ),
        ] = None,
        keep: Annotated[
            bool | None,
            typer.Option(
                "--keep/--delete",
                show_default=False,
                help="With --copy: keep or delete the copy at the end (default: ask, or delete when "
                "not interactive).",
            ),
        ] = None,
        reason: Annotated[
            str | None,
            typer.Option(
                "--reason", show_default=False, help="Why (a ticket or incident id), in the record."
            ),
        ] = None,
        no_record: Annotated[
            bool,
            typer.Option(
                "--no-record", help="No transcript (only where the config sets sessions.allow_no_record)."
            ),
        ] = False,
        record_input: Annotated[
            bool, typer.Option("--record-input", help="Also record keystrokes (may capture passwords).")
        ] = False,
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
            profile=profile,
            force=force,
            copy=copy,
            copy_command=copy_command,
            keep=keep,
            reason=reason,
            no_record=no_record,
            record_input=record_input,
        )
        if code:
            raise typer.Exit(code)


def run_attach(**options: Any) -> int:
    from kdebug.config import effective_config
    from kdebug.debug.session import Debugger, LocalStreams
    from kdebug.images.inspection import check_override_allowed, make_image_chooser
    from kdebug.kube import terminal
    from kdebug.sessions.recorder import open_recorder

    request = build_request(options)
    # everything below up to Debugger.run is local: the allowlist and the recording policy refuse
    # before the cluster is touched
    config = effective_config(request.kubeconfig, request.context)
    if request.image:
        check_override_allowed(config, request.image)
    recorder = open_recorder(
        config,
        record=not options.get("no_record", False),
        reason=options.get("reason"),
        record_input=options.get("record_input", False),
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
    debugger = Debugger(
        progress=renderer,
        recorder=recorder,
        session_id=lambda: recorder.session_id,
        make_chooser=lambda client, image: make_image_chooser(config, kube_client=client, image=image),
        confirm=_ask_on_terminal,
        record_input=bool(options.get("record_input")),
    )
    try:
        with sigint_redelivered(debugger.interrupt_handled):
            return debugger.run(request, local)
    finally:
        renderer.stop()


REDELIVER_EVERY_S = 1.0
REDELIVER_TIMES = 5


@contextlib.contextmanager
def sigint_redelivered(handled: threading.Event) -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, and deliver it again until handled.

    Python turns SIGINT into KeyboardInterrupt in the main thread, but one that lands inside an object
    finalizer (e.g. a TLS socket closed by the garbage collector) is printed as "Exception ignored"
    and dropped: kdebug would keep waiting for a long command. So after a SIGINT the signal is sent
    again every second (a few times) until the debugger says it caught the interrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = threading.Event()
    finished = threading.Event()
    # SIGTERM (timeout(1), a CI runner) and SIGHUP (a closed terminal window) end the session the way
    # Ctrl-C does: terminal restored, the container's fate reported, the session recorded
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in stopping}

    def on_sigint(signum: int, frame: Any) -> None:
        received.set()
        raise KeyboardInterrupt

    def redeliver() -> None:
        sent = 0
        while not finished.wait(REDELIVER_EVERY_S):
            if received.is_set() and not handled.is_set() and sent < REDELIVER_TIMES:
                sent += 1
                os.kill(os.getpid(), signal.SIGINT)

    for sig in stopping:
        signal.signal(sig, on_sigint)
    watcher = threading.Thread(target=redeliver, name="kdebug-sigint", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_request(options: dict[str, Any]) -> Any:
    """complete + validate: flags -> AttachRequest, or a UsageError before anything else happens."""
    import shlex

    from kdebug.debug.request import AttachRequest
    from kdebug.durations import parse_duration
    from kdebug.errors import UsageError
    from kdebug.security import profiles

    if not options["target"] and not options["selector"]:
        raise UsageError("missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)")
    if options["selector"] and options["target"]:
        # with -l there is no TARGET: `-l app=x -- cmd args` puts cmd where TARGET would be
        options = {**options, "command": [options["target"], *options["command"]], "target": None}
    copy = bool(options.get("copy"))
    if not copy and options.get("copy_command") is not None:
        raise UsageError("--copy-command needs --copy")
    if not copy and options.get("keep") is not None:
        raise UsageError("--keep/--delete need --copy")
    profile = options.get("profile") or profiles.AUTO
    profiles.validate_profile(profile)
    copy_command = None
    if options.get("copy_command") is not None:
        try:
            copy_command = shlex.split(options["copy_command"])
        except ValueError as exc:
            raise UsageError(f"--copy-command: {exc}") from None
        if not copy_command:
            raise UsageError("--copy-command is empty")
    return AttachRequest(
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
        profile=profile,
        force=bool(options.get("force")),
        copy=copy,
        copy_command=copy_command,
        keep=options.get("keep"),
    )


def _ask_on_terminal(question: str) -> bool:
    """Yes/no on stderr after the session (the terminal is back in normal mode); default yes."""
    sys.stderr.write(f"kdebug: {question} [Y/n] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() not in ("n", "no")


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
    """Turns debugger progress events into stderr lines and a spinner (spinner only on a terminal).

    rich is imported on a thread when the first spinner is wanted (about 25 ms that would otherwise
    delay the PATCH); the spinner appears once it is loaded, showing the latest state, unless a line
    or the banner came first.
    """

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.status: Any = None
        self.console: Any = None
        self._lock = threading.Lock()
        self._spinning: str | None = None  # the text the spinner should show now, None when paused
        self._rich_loaded = False
        self.loader: threading.Thread | None = None

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

    def _on_image(self, image: str, reason: str) -> None:
        self._line(f"debug image {image}: {reason}")

    def _on_preflight(self, summary: str) -> None:
        self._line(summary)

    def _on_security(self, profile: str, reason: str) -> None:
        self._line(f"security profile {reason}")

    def _on_copy(self, copy: str, pod: str) -> None:
        self._line(f"created pod {copy}, a copy of {pod} (shareProcessNamespace) with the debugger in it")

    def _on_copy_deleted(self, copy: str) -> None:
        self._line(f"deleted the copy {copy}")

    def _on_copy_kept(self, copy: str, namespace: str) -> None:
        self._line(f"kept the copy {copy}; delete it with: kubectl delete pod {copy} -n {namespace}")

    def _on_banner(self, **fields: Any) -> None:
        self._pause()
        verb = "attached to" if fields.get("reused") else "debug container"
        self._line(f"pod {fields['namespace']}/{fields['pod']}, target container {fields['target']}")
        self._line(f"{verb} {fields['container']}, image {fields['image']}")
        self._line(f"the target's filesystem is at {fields['target_root']}")

    def _spin(self, text: str) -> None:
        from kdebug.kube.terminal import is_terminal

        if not is_terminal(self.stream):
            return
        with self._lock:
            self._spinning = text
            if self.status is not None:
                self.status.update(text)
            elif self._rich_loaded:
                self._show(text)
            elif self.loader is None:
                self.loader = threading.Thread(target=self._load_rich, name="kdebug-spinner", daemon=True)
                self.loader.start()

    def _load_rich(self) -> None:
        import rich.console  # noqa: F401 (the slow part, off the main thread)

        with self._lock:
            self._rich_loaded = True
            if self._spinning is not None and self.status is None:
                self._show(self._spinning)

    def _show(self, text: str) -> None:
        from rich.console import Console

        self.console = Console(file=self.stream)
        self.status = self.console.status(text)
        self.status.start()

    def _pause(self) -> None:
        with self._lock:
            self._spinning = None
            if self.status is not None:
                self.status.stop()
                self.status = None

    def stop(self) -> None:
        self._pause()
