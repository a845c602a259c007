"""`kdebug attach`: parse flags into AttachOptions, run one debug session, progress on stderr."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Annotated

import typer

from kdebug import config as config_files
from kdebug.cli import options as common
from kdebug.console import signals, terminal
from kdebug.console.progress import ProgressRenderer
from kdebug.durations import parse_duration
from kdebug.errors import UsageError
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    from kdebug.debug.request import AttachRequest

session = lazy_module("kdebug.debug.session")
request_module = lazy_module("kdebug.debug.request")
inspection = lazy_module("kdebug.images.inspection")
profiles = lazy_module("kdebug.security.profiles")
recorder_files = lazy_module("kdebug.sessions.recorder")

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


@dataclass
class AttachOptions:
    """The flags of `kdebug attach` as the user gave them (durations and --copy-command still text)."""

    kube: common.KubeOptions = field(default_factory=common.KubeOptions)
    target: str | None = None
    command: list[str] = field(default_factory=list)
    container: str | None = None
    selector: str | None = None
    image: str | None = None
    timeout: str = "2m"
    idle_timeout: str = "1h"
    reuse: bool | None = None
    join: bool = False
    profile: str = "auto"
    force: bool = False
    copy: bool = False
    copy_command: str | None = None
    keep: bool | None = None
    reason: str | None = None
    no_record: bool = False
    record_input: bool = False

    def complete(self) -> None:
        self.kube.complete()

    def validate(self) -> None:
        if not self.target and not self.selector:
            raise UsageError("missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)")
        if self.target and self.selector:
            raise UsageError(f"give TARGET or -l SELECTOR, not both ({self.target!r} and -l {self.selector})")
        self.kube.validate()
        common.validate_target_names([self.target] if self.target else [], self.container, self.selector)
        if not self.copy and self.copy_command is not None:
            raise UsageError("--copy-command needs --copy")
        if not self.copy and self.keep is not None:
            raise UsageError("--keep/--delete need --copy")
        if self.join and (self.reuse is False or self.copy or self.command):
            raise UsageError(
                "--join takes over a running shell: it cannot go with --no-reuse, --copy or a COMMAND"
            )
        profiles.validate_profile(self.profile)
        parse_duration(self.timeout, option="--timeout")
        parse_duration(self.idle_timeout, option="--idle-timeout")
        self.copy_argv()

    def copy_argv(self) -> list[str] | None:
        """--copy-command split as a shell would, or None when not given."""
        if self.copy_command is None:
            return None
        try:
            argv = shlex.split(self.copy_command)
        except ValueError as exc:
            raise UsageError(f"--copy-command: {exc}") from None
        if not argv:
            raise UsageError("--copy-command is empty")
        return argv

    def request(self) -> AttachRequest:
        """The debugger's request (call after validate)."""
        return request_module.AttachRequest(
            target=self.target,
            selector=self.selector,
            namespace=self.kube.namespace,
            context=self.kube.context,
            kubeconfig=self.kube.kubeconfig,
            container=self.container,
            image=self.image,
            command=list(self.command),
            timeout_s=parse_duration(self.timeout, option="--timeout"),
            idle_timeout_s=parse_duration(self.idle_timeout, option="--idle-timeout"),
            reuse=self.reuse,
            join=self.join,
            profile=self.profile,
            force=self.force,
            copy=self.copy,
            copy_command=self.copy_argv(),
            keep=self.keep,
        )


def register(app: typer.Typer, execute: Callable[[AttachOptions], int] | None = None) -> None:
    """Add `attach` to `app`; `execute` runs the prepared options (tests pass one that records them)."""
    execute = execute or run_attach

    @app.command("attach", cls=common.DashDashCommand, epilog=EXAMPLES)
    def attach(
        ctx: typer.Context,
        target: common.Target = None,
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
                help="Attach to your own running kdebug shell with the same image and target "
                "(default: on for interactive shells).",
            ),
        ] = None,
        join: Annotated[
            bool,
            typer.Option(
                "--join",
                help="Take over another user's running kdebug shell in the pod: you share its keystrokes "
                "and `exit` (recorded as `joined`). Without it, only your own shell is reused.",
            ),
        ] = False,
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
        options = AttachOptions(
            kube=common.KubeOptions(namespace, context, kubeconfig),
            target=target,
            command=common.dash_command(ctx),
            container=container,
            selector=selector,
            image=image,
            timeout=timeout,
            idle_timeout=idle_timeout,
            reuse=reuse,
            join=join,
            profile=profile,
            force=force,
            copy=copy,
            copy_command=copy_command,
            keep=keep,
            reason=reason,
            no_record=no_record,
            record_input=record_input,
        )
        common.exit_with(execute(common.prepared(options)))


def run_attach(options: AttachOptions) -> int:
    """One debug session for prepared options; the remote command's exit code (or kdebug's own)."""
    request = options.request()
    # everything below up to Debugger.run is local: the allowlist and the recording policy refuse
    # before the cluster is touched
    config = config_files.effective_config(request.kubeconfig, request.context)
    if request.image:
        inspection.check_override_allowed(config, request.image)
    recorder = recorder_files.open_recorder(
        config,
        record=not options.no_record,
        reason=options.reason,
        record_input=options.record_input,
    )
    stdin_fd = terminal.stdin_fd()
    local = request_module.LocalStreams(
        stdin_fd=stdin_fd,
        stdout=_binary(sys.stdout),
        stderr=_binary(sys.stderr),
        stdin_is_tty=terminal.is_terminal(stdin_fd),
        stdout_is_tty=terminal.is_terminal(sys.stdout),
        stdin_has_data=terminal.stdin_has_data_source(stdin_fd),
    )
    renderer = ProgressRenderer(sys.stderr)
    debugger = session.Debugger(
        progress=renderer,
        recorder=recorder,
        session_id=lambda: recorder.session_id,
        make_chooser=lambda client, image: inspection.make_image_chooser(
            config, kube_client=client, image=image
        ),
        confirm=_ask_on_terminal,
        record_input=options.record_input,
    )
    try:
        with signals.sigint_redelivered(debugger.interrupt_handled):
            return debugger.run(request, local)
    finally:
        renderer.stop()


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
