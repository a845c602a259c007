"""Orchestration of one `kdebug attach` session. Prints nothing: progress goes through a callback.

resolve target -> refuse what cannot work -> choose image -> reuse or add the ephemeral container
-> watch until it runs (or fails, or --timeout) -> stream (attach, or logs + stdin feed) -> exit code.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from kdebug import spec, streaming
from kdebug.channels import SUBPROTOCOLS
from kdebug.durations import format_duration
from kdebug.errors import (
    InterruptedByUserError,
    KdebugError,
    StartFailedError,
    UnreachableError,
    WaitTimeoutError,
)
from kdebug.models import DEFAULT_DEBUG_IMAGE, ImageChoice, ResolvedTarget

COMMAND_RUN_LIMIT_S = 365 * 86400.0  # --timeout bounds the start; a running command may take its time
EXIT_REPORT_WAIT_S = 5.0  # after attach ends, how long the terminated state may take to appear
AFTER_LOSS_TIMEOUT = (5.0, 5.0)  # connect, read: asking the pod after a stream ended without a status
Progress = Callable[..., None]  # progress(event: str, **fields)
ImageChooser = Callable[[dict, str], ImageChoice]


class Recorder(Protocol):
    def started(self, fields: dict) -> None: ...
    def update(self, fields: dict) -> None: ...
    def output(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def finished(self, status: str, exit_code: int | None, error: str | None) -> None: ...


class NullRecorder:
    """The default recorder: records nothing."""

    def started(self, fields: dict) -> None:
        pass

    def update(self, fields: dict) -> None:
        pass

    def output(self, data: bytes) -> None:
        pass

    def resize(self, cols: int, rows: int) -> None:
        pass

    def finished(self, status: str, exit_code: int | None, error: str | None) -> None:
        pass


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


def plan_session(request: AttachRequest, local: LocalStreams, choice: ImageChoice) -> SessionPlan:
    """PURE decision table: interactive tty, piped stdin feed, or output-only."""
    command = list(request.command) or list(choice.shell)
    if local.interactive:
        if not request.command:
            command = spec.idle_guarded(command)
        # only a plain shell can be taken over: a COMMAND always gets its own container
        reuse = not request.command and request.reuse is not False
        return SessionPlan(command, tty=True, stdin=True, stdin_once=False, reuse=reuse, attach=True)
    feed = local.stdin_has_data or not request.command
    # a reusable container is a tty shell: only an interactive session can take it over
    return SessionPlan(command, tty=False, stdin=feed, stdin_once=feed, reuse=False, attach=feed)


def default_image_choice(image: str | None) -> ImageChoice:
    if image:
        return ImageChoice(image=image, shell=["sh"], reason="--image")
    return ImageChoice(image=DEFAULT_DEBUG_IMAGE, shell=["sh"], reason="default pinned BusyBox")


def new_suffix() -> str:
    return "".join(secrets.choice(spec.SUFFIX_ALPHABET) for _ in range(5))


def new_session_id() -> str:
    return uuid.uuid4().hex


class Debugger:
    """Runs one session; every dependency that touches the outside world can be injected."""

    def __init__(
        self,
        progress: Progress | None = None,
        choose_image: ImageChooser | None = None,
        recorder: Recorder | None = None,
        connect: Callable[..., Any] | None = None,
        suffix: Callable[[], str] = new_suffix,
        session_id: Callable[[], str] = new_session_id,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.progress: Progress = progress or (lambda event, **fields: None)
        self.choose_image = choose_image
        self.recorder: Recorder = recorder or NullRecorder()
        self.connect = connect
        self.suffix = suffix
        self.session_id = session_id
        self.clock = clock

    # -- the session ---------------------------------------------------------------------------

    def run(self, request: AttachRequest, local: LocalStreams) -> int:
        try:
            exit_code = self._run(request, local)
        except KdebugError as exc:
            self.recorder.finished(exc.kind, None, exc.message)
            raise
        except KeyboardInterrupt:
            self.recorder.finished("interrupted", None, "interrupted")
            raise InterruptedByUserError("interrupted") from None
        self.recorder.finished("ok" if exit_code == 0 else "failed", exit_code, None)
        return exit_code

    def _run(self, request: AttachRequest, local: LocalStreams) -> int:
        from kdebug import kube, resolve, targets

        connect = self.connect or kube.connect
        client = connect(request.kubeconfig, request.context, request.namespace)
        namespace = request.namespace or client.namespace
        resolved = resolve.resolve_target(
            client, namespace, request.target, request.selector, request.container
        )
        self.progress(
            "target",
            pod=resolved.pod_name,
            container=resolved.container,
            via=resolved.via,
            namespace=namespace,
        )
        targets.refuse_undebuggable(resolved.pod, resolved.container, resolve.node_of(client, resolved.pod))
        choice = self._image_choice(request, resolved)
        plan = plan_session(request, local, choice)
        name, state, reused = self._reuse_or_add(client, resolved, choice, plan, request)
        self.recorder.update({"container": name, "pod": resolved.pod_name, "namespace": namespace})
        self.progress(
            "banner",
            pod=resolved.pod_name,
            namespace=namespace,
            target=resolved.container,
            container=name,
            image=choice.image,
            reason=choice.reason,
            reused=reused,
            target_root=spec.TARGET_ROOT,
        )
        if state.phase == "terminated":
            return self._finish_terminated(client, resolved, name, state, local)
        if plan.tty:
            return self._interactive(client, resolved, name, local)
        return self._non_interactive(client, resolved, name, plan, local)

    def _reuse_or_add(
        self,
        client: Any,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
    ) -> tuple[str, spec.StartupState, bool]:
        """A running kdebug shell to take over, else a new debug container that has started."""
        if plan.reuse:
            existing = spec.find_reusable_container(resolved.pod, choice.image, resolved.container)
            if existing:
                self.progress("reusing", container=existing, pod=resolved.pod_name)
                return existing, spec.startup_state(resolved.pod, existing), True
        name = spec.unique_container_name(resolved.pod, self.suffix)
        try:
            self._add_container(client, resolved, choice, plan, request, name)
            state = self._wait_until_started(client, resolved, name, request.timeout_s, bool(request.command))
        except KeyboardInterrupt:
            raise InterruptedByUserError(
                f"interrupted while waiting for debug container {name} (it may still start in the pod)"
            ) from None
        return name, state, False

    def _image_choice(self, request: AttachRequest, resolved: ResolvedTarget) -> ImageChoice:
        if request.image or self.choose_image is None:
            return default_image_choice(request.image)
        return self.choose_image(resolved.pod, resolved.container)

    def _add_container(
        self,
        client: Any,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
        name: str,
    ) -> None:
        from kdebug.resolve import pods_path

        session_id = self.session_id()
        container = spec.build_ephemeral_container(
            name=name,
            image=choice.image,
            command=plan.command,
            target=resolved.container,
            session_id=session_id,
            stdin=plan.stdin,
            tty=plan.tty,
            stdin_once=plan.stdin_once,
            idle_timeout_s=int(request.idle_timeout_s),
            run_as_user=choice.run_as_user,
            run_as_group=choice.run_as_group,
        )
        self.progress("adding", container=name, image=choice.image, pod=resolved.pod_name)
        self.recorder.started(
            {
                "session_id": session_id,
                "pod": resolved.pod_name,
                "namespace": resolved.namespace,
                "target": resolved.container,
                "container": name,
                "image": choice.image,
                "image_reason": choice.reason,
                "command": plan.command,
                "tty": plan.tty,
            }
        )
        path = pods_path(resolved.namespace, resolved.pod_name) + "/ephemeralcontainers"
        client.patch(path, spec.ephemeral_patch(container), spec.PATCH_CONTENT_TYPE)

    # -- waiting -------------------------------------------------------------------------------

    def _wait_until_started(
        self, client: Any, resolved: ResolvedTarget, name: str, timeout_s: float, has_command: bool
    ) -> spec.StartupState:
        pod, state = self._watch_container(client, resolved, name, timeout_s, until_terminated=False)
        if state.phase == "failed":
            raise StartFailedError(
                f"debug container {name} failed to start: {state.reason}"
                + (f": {state.message}" if state.message else ""),
                hint=spec.start_failure_hint(pod, name, state.reason),
            )
        if state.phase == "terminated" and not has_command:
            detail = f"exit code {state.exit_code}" + (f", {state.reason}" if state.reason else "")
            raise StartFailedError(
                f"debug container {name} ended before kdebug could attach ({detail})"
                + (f": {state.message.strip()}" if state.message.strip() else "")
            )
        return state

    def _watch_container(
        self, client: Any, resolved: ResolvedTarget, name: str, timeout_s: float, until_terminated: bool
    ) -> tuple[dict, spec.StartupState]:
        """List for a resourceVersion, then watch the one pod (like kubectl) until an outcome or timeout."""
        from kdebug.resolve import pods_path

        deadline = self.clock() + timeout_s
        path = pods_path(resolved.namespace)
        selector = {"fieldSelector": f"metadata.name={resolved.pod_name}"}
        last = spec.StartupState("waiting", "Pending")
        while True:
            listing = client.get(path, selector)
            for pod in listing.get("items") or []:
                last = spec.startup_state(pod, name)
                self.progress("waiting", container=name, state=last.reason or last.phase)
                outcome = self._outcome(pod, name, until_terminated)
                if outcome:
                    return pod, outcome
            if not listing.get("items"):
                raise StartFailedError(f"pod {resolved.pod_name} was deleted while kdebug waited")
            version = (listing.get("metadata") or {}).get("resourceVersion", "")
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            query = {**selector, "resourceVersion": version}
            for event in client.watch(path, query, remaining):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    break  # e.g. 410 Gone: list again
                if kind == "DELETED":
                    raise StartFailedError(f"pod {resolved.pod_name} was deleted while kdebug waited")
                if kind in ("ADDED", "MODIFIED"):
                    last = spec.startup_state(obj, name)
                    self.progress("waiting", container=name, state=last.reason or last.phase)
                    outcome = self._outcome(obj, name, until_terminated)
                    if outcome:
                        return obj, outcome
                if self.clock() >= deadline:
                    break
            if self.clock() >= deadline:
                break
        verb = "finish" if until_terminated else "start"
        raise WaitTimeoutError(
            f"debug container {name} did not {verb} within {format_duration(timeout_s)} "
            f"(last state: {last.reason or last.phase})",
            hint="the container stays in the pod and may still start; raise --timeout to wait longer",
        )

    @staticmethod
    def _outcome(pod: dict, name: str, until_terminated: bool) -> spec.StartupState | None:
        state = spec.startup_state(pod, name)
        if state.phase in ("terminated", "failed"):
            return state
        if state.phase == "running" and not until_terminated:
            return state
        return None

    # -- streaming -----------------------------------------------------------------------------

    def _attach_socket(
        self, client: Any, resolved: ResolvedTarget, name: str, *, stdin: bool, stdout: bool, tty: bool
    ) -> Any:
        from kdebug.resolve import pods_path

        query = [
            ("container", name),
            ("stdin", _flag(stdin)),
            ("stdout", _flag(stdout)),
            ("stderr", _flag(stdout and not tty)),
            ("tty", _flag(tty)),
        ]
        path = pods_path(resolved.namespace, resolved.pod_name) + "/attach"
        return client.websocket(path, query, SUBPROTOCOLS)

    def _interactive(self, client: Any, resolved: ResolvedTarget, name: str, local: LocalStreams) -> int:
        from kdebug.resolve import pods_path

        try:
            ws = self._attach_socket(client, resolved, name, stdin=True, stdout=True, tty=True)
        except KdebugError:
            # a short COMMAND may end between "running" and the attach: show its log instead
            state = spec.startup_state(client.get(pods_path(resolved.namespace, resolved.pod_name)), name)
            if state.phase != "terminated":
                raise
            return self._finish_terminated(client, resolved, name, state, local)
        target = streaming.StreamTarget(
            stdin_fd=local.stdin_fd,
            stdout=local.stdout,
            stderr=local.stdout,
            tty=True,
            on_output=self.recorder.output,
            on_resize=self.recorder.resize,
        )
        result = streaming.run_stream(ws, target)
        if result.status is not None and result.status.exit_code:
            return result.status.exit_code
        # containerd ends every attach with Success: the real exit code is in the terminated state
        return self._exit_code_after_stream(client, resolved, name, result)

    def _exit_code_after_stream(
        self, client: Any, resolved: ResolvedTarget, name: str, result: streaming.StreamResult
    ) -> int:
        """No exit code on the status channel: ask the pod; a running shell means the link broke."""
        from kdebug.resolve import pods_path

        lost = f"connection to the cluster at {client.server} lost during the session"
        reattach = f"`kdebug attach {resolved.pod_name} -n {resolved.namespace}`"
        try:
            # short timeouts: after a dropped connection the server may be gone without a FIN
            pod = client.request("GET", pods_path(resolved.namespace, resolved.pod_name),
                                 timeout=AFTER_LOSS_TIMEOUT)
        except KdebugError:
            raise UnreachableError(lost, hint=f"{name} may still run; reattach with {reattach}") from None
        state = spec.startup_state(pod, name)
        if state.phase != "terminated" and result.status is not None and result.status.exit_code == 0:
            # the process ended; give the kubelet a moment to report its terminated state
            with contextlib.suppress(WaitTimeoutError):
                _, state = self._watch_container(
                    client, resolved, name, EXIT_REPORT_WAIT_S, until_terminated=True
                )
            if state.phase != "terminated":
                return 0
        if state.phase == "terminated":
            return state.exit_code if state.exit_code is not None else 0
        if result.status is not None:
            raise KdebugError(f"attach to {name} ended: {result.status.message}")
        raise UnreachableError(
            lost,
            hint=f"the shell in {name} keeps running until it exits or idles out "
            f"(--idle-timeout); reattach with {reattach}",
        )

    def _non_interactive(
        self,
        client: Any,
        resolved: ResolvedTarget,
        name: str,
        plan: SessionPlan,
        local: LocalStreams,
    ) -> int:
        """Output from the log (never lost, even for a command that ends before attach); stdin via attach."""
        logs = _LogFollower(client, resolved, name, local.stdout, self.recorder.output)
        logs.start()
        try:
            if plan.attach:
                self._feed_stdin(client, resolved, name, local)
            _, state = self._watch_container(
                client, resolved, name, COMMAND_RUN_LIMIT_S, until_terminated=True
            )
            logs.join()
        except KeyboardInterrupt:
            raise InterruptedByUserError(
                f"interrupted; debug container {name} keeps running until its command ends"
            ) from None
        if logs.error is not None:
            raise logs.error
        return state.exit_code if state.exit_code is not None else 0

    def _feed_stdin(self, client: Any, resolved: ResolvedTarget, name: str, local: LocalStreams) -> None:
        try:
            ws = self._attach_socket(client, resolved, name, stdin=True, stdout=False, tty=False)
        except KdebugError:
            return  # the command already ended: it did not need its input
        # a terminal on stdin (stdout redirected) is read line by line; nothing to read means EOF at once
        readable = local.stdin_fd is not None and (local.stdin_has_data or local.stdin_is_tty)
        empty = None if readable else _empty_fd()
        stdin_fd = local.stdin_fd if empty is None else empty
        try:
            streaming.run_stream(ws, streaming.StreamTarget(stdin_fd=stdin_fd, stdout=None, stderr=None))
        finally:
            if empty is not None:
                os.close(empty)

    def _finish_terminated(
        self, client: Any, resolved: ResolvedTarget, name: str, state: spec.StartupState, local: LocalStreams
    ) -> int:
        """The command ended before attach: print its whole log and return its exit code."""
        logs = _LogFollower(client, resolved, name, local.stdout, self.recorder.output, follow=False)
        logs.run()
        if logs.error is not None:
            raise logs.error
        return state.exit_code if state.exit_code is not None else 0


class _LogFollower(threading.Thread):
    """Copies `pods/NAME/log?container=X&follow=true` to stdout until the container ends."""

    def __init__(
        self,
        client: Any,
        resolved: ResolvedTarget,
        name: str,
        out: IO[bytes],
        on_output: Callable[[bytes], None],
        follow: bool = True,
    ):
        super().__init__(name="kdebug-logs", daemon=True)
        self.client, self.resolved, self.name = client, resolved, name
        self.out, self.on_output, self.follow = out, on_output, follow
        self.error: KdebugError | None = None

    def run(self) -> None:
        from kdebug.resolve import pods_path

        path = pods_path(self.resolved.namespace, self.resolved.pod_name) + "/log"
        query = {"container": self.name, "follow": "true" if self.follow else None}
        try:
            for chunk in self.client.stream_bytes(path, query):
                with contextlib.suppress(OSError, ValueError):
                    self.out.write(chunk)
                    self.out.flush()
                self.on_output(chunk)
        except KdebugError as exc:
            self.error = exc


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _empty_fd() -> int:
    """A read end that is immediately at EOF: closes the remote stdin right away."""
    read_end, write_end = os.pipe()
    os.close(write_end)
    return read_end
