"""PURE: what the user asked `attach` for, the local streams, and the plan derived from both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from kdebug.debug import spec
from kdebug.models import ImageChoice


@dataclass(frozen=True)
class AttachRequest:
    """Everything the user asked for, already parsed (durations in seconds)."""

    target: str | None
    selector: str | None = None
    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    container: str | None = None
    image: str | None = None
    command: list[str] = field(default_factory=list)
    timeout_s: float = 120.0
    idle_timeout_s: float = float(spec.DEFAULT_IDLE_TIMEOUT_S)
    reuse: bool | None = None  # None: on for interactive shells
    join: bool = False  # take over another user's running shell (shared keystrokes), recorded
    profile: str = "auto"
    force: bool = False  # send a profile the namespace's Pod Security would reject
    copy: bool = False  # debug a copy of the pod instead of adding an ephemeral container
    copy_command: list[str] | None = None  # the target's command in the copy (e.g. sleep infinity)
    keep: bool | None = None  # keep the copy at the end; None: ask (interactive) or delete


@dataclass
class LocalStreams:
    """The local side: stdin fd and the binary stdout/stderr, with what kind of things they are."""

    stdin_fd: int | None
    stdout: IO[bytes]
    stderr: IO[bytes]
    stdin_is_tty: bool
    stdout_is_tty: bool
    stdin_has_data: bool

    @property
    def interactive(self) -> bool:
        return self.stdin_is_tty and self.stdout_is_tty


@dataclass(frozen=True)
class SessionPlan:
    """How the debug container talks to us, decided from the terminal and COMMAND."""

    command: list[str]
    tty: bool
    stdin: bool
    stdin_once: bool
    reuse: bool
    attach: bool  # attach over websocket (else: logs only)


def interactive_shell_plan(choice: ImageChoice, reuse: bool = True) -> SessionPlan:
    """An interactive shell behind the idle watchdog: what a plain `kdebug attach POD` on a terminal
    sends (and what `inspect --spec` shows)."""
    command = spec.idle_guarded(list(choice.shell))
    return SessionPlan(command, tty=True, stdin=True, stdin_once=False, reuse=reuse, attach=True)


def plan_session(request: AttachRequest, local: LocalStreams, choice: ImageChoice) -> SessionPlan:
    """Decision table: interactive tty, piped stdin feed, or output-only."""
    command = list(request.command) or list(choice.shell)
    if local.interactive:
        if not request.command:
            return interactive_shell_plan(choice, reuse=request.reuse is not False)
        # only a plain shell can be taken over: a COMMAND always gets its own container
        return SessionPlan(command, tty=True, stdin=True, stdin_once=False, reuse=False, attach=True)
    feed = local.stdin_has_data or not request.command
    # a reusable container is a tty shell: only an interactive session can take it over
    return SessionPlan(command, tty=False, stdin=feed, stdin_once=feed, reuse=False, attach=feed)
