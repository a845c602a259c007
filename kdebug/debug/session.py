"""Orchestration of one `kdebug attach` session. Prints nothing: progress goes through a callback.

resolve target -> refuse what cannot work -> choose image -> reuse or add the ephemeral container
-> watch until it runs (or fails, or --timeout) -> stream (attach, or logs + stdin feed) -> exit code.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

from kdebug.debug import spec
from kdebug.debug.copy_spec import COPY_TARGET_ROOT, in_copy_command
from kdebug.durations import format_duration
from kdebug.errors import (
    InterruptedByUserError,
    KdebugError,
    NotSupportedError,
    StartFailedError,
    UnreachableError,
    WaitTimeoutError,
)
from kdebug.models import DEFAULT_DEBUG_IMAGE, ImageChoice, ResolvedTarget

if TYPE_CHECKING:
    from kdebug.kube import streaming

COMMAND_RUN_LIMIT_S = 365 * 86400.0  # --timeout bounds the start; a running command may take its time
EXIT_REPORT_WAIT_S = 5.0  # after attach ends, how long the terminated state may take to appear
AFTER_LOSS_TIMEOUT = (5.0, 5.0)  # connect, read: asking the pod after a stream ended without a status
Progress = Callable[..., None]  # progress(event: str, **fields)
ImageChooser = Callable[[dict, str], ImageChoice]


class Recorder(Protocol):
    def started(self, fields: dict) -> None: ...
    def update(self, fields: dict) -> None: ...
    def output(self, data: bytes) -> None: ...
    def input(self, data: bytes) -> None: ...
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

    def input(self, data: bytes) -> None:
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


def copy_hint(resolved: ResolvedTarget) -> str:
    return (
        f"debug a copy of the pod instead: kdebug attach {resolved.pod_name} -n {resolved.namespace} --copy"
        " (add --copy-command 'sleep infinity' to keep a crashing app from exiting)"
    )


def container_state(pod: dict, name: str) -> spec.StartupState:
    """spec.startup_state for an ephemeral container, or for a regular one (the debugger in a copy)."""
    if spec.ephemeral_status(pod, name):
        return spec.startup_state(pod, name)
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if any(s.get("name") == name for s in statuses):
        return spec.startup_state({"status": {"ephemeralContainerStatuses": statuses}}, name)
    return spec.startup_state(pod, name)


def target_fields(resolved: ResolvedTarget) -> dict[str, Any]:
    """Record fields about the target pod and container."""
    pod = resolved.pod
    metadata, pod_spec = pod.get("metadata") or {}, pod.get("spec") or {}
    container = next((c for c in pod_spec.get("containers") or [] if c.get("name") == resolved.container), {})
    status = next(
        (
            s
            for s in (pod.get("status") or {}).get("containerStatuses") or []
            if s.get("name") == resolved.container
        ),
        {},
    )
    return {
        "namespace": resolved.namespace,
        "pod": resolved.pod_name,
        "pod_uid": metadata.get("uid"),
        "node": pod_spec.get("nodeName"),
        "container": resolved.container,
        "target_image": container.get("image"),
        "target_image_digest": status.get("imageID") or None,
    }


SELF_SUBJECT_REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def identity_fields(client: Any, kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    """Who the cluster says we are (SelfSubjectReview), else the kubeconfig's user name, marked so."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = client.request("POST", SELF_SUBJECT_REVIEW_PATH, body=body)
        info = (answer.get("status") or {}).get("userInfo") or {}
    except (KdebugError, AttributeError):
        info = {}
    if info.get("username"):
        return {
            "kube_user": info["username"],
            "kube_groups": list(info.get("groups") or []),
            "kube_user_source": "selfsubjectreview",
        }
    user = kubeconfig_user(kubeconfig, context)
    return {"kube_user": user, "kube_user_source": "kubeconfig" if user else None}


def kubeconfig_user(kubeconfig: str | None, context: str | None) -> str | None:
    """The user name the kubeconfig's (current) context names; None when it cannot be read."""
    from kdebug.kube import kubeconfig as kc

    try:
        merged = kc.load_merged(kc.kubeconfig_paths(kubeconfig))
        _name, ctx = kc.chosen_context(merged, context)
    except KdebugError:  # the connection already reported any problem with the kubeconfig
        return None
    user = ctx.get("user")
    return str(user) if user else None


def _import_while_waiting(*modules: str) -> None:
    """Import `modules` on a thread while the container starts: the websocket client alone costs ~35 ms
    of start-up that would otherwise come between "running" and the shell's prompt."""
    import importlib

    from kdebug.kube.background import Pending

    def import_all() -> None:
        for module in modules:
            importlib.import_module(module)

    Pending(import_all)


def _pod_named_by(request: AttachRequest) -> str | None:
    """The pod's name when TARGET names a pod (known before any lookup), else None."""
    from kdebug.kube.targets import parse_target

    if request.selector or not request.target:
        return None
    try:
        ref = parse_target(request.target)
    except KdebugError:  # resolve_target reports it
        return None
    return ref.name if ref.kind == "pod" else None


def _prefetch_namespace(client: Any, namespace: str) -> None:
    """The namespace (its Pod Security labels) is read before the PATCH; fetch it now, in parallel."""
    from kdebug.security.decision import namespace_path

    prefetch = getattr(client, "prefetch", None)  # test doubles may not have it
    if prefetch is not None:
        prefetch(namespace_path(namespace))


def _context_of(client: Any) -> str | None:
    return getattr(getattr(client, "cluster", None), "context", None)


def _env_value(container: dict, name: str) -> str | None:
    return next((e.get("value") for e in container.get("env") or [] if e.get("name") == name), None)


class _InputTap:
    """Wraps the attach websocket: stdin frames (channel 0) also go to the recorder (--record-input)."""

    def __init__(self, ws: Any, on_input: Callable[[bytes], None]):
        self._ws = ws
        self._on_input = on_input

    def send_binary(self, frame: bytes) -> Any:
        if frame[:1] == b"\x00" and len(frame) > 1:
            self._on_input(bytes(frame[1:]))
        return self._ws.send_binary(frame)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


def default_image_choice(image: str | None) -> ImageChoice:
    if image:
        return ImageChoice(image=image, shell=["sh"], reason="--image")
    return ImageChoice(image=DEFAULT_DEBUG_IMAGE, shell=["sh"], reason="default pinned BusyBox")


def new_suffix() -> str:
    import secrets  # here, not at the top: a measurable share of every start-up

    return "".join(secrets.choice(spec.SUFFIX_ALPHABET) for _ in range(5))


def new_session_id() -> str:
    import uuid  # imports `platform`: kept off the start-up path

    return uuid.uuid4().hex


class Debugger:
    """Runs one session; every dependency that touches the outside world can be injected.

    `make_chooser(client)` builds the image chooser once the cluster client exists (the catalog's
    classification needs it for pull secrets); `choose_image` is a ready chooser (tests).
    `confirm(question)` asks the user whether to delete a copy (interactive sessions only).
    """

    def __init__(
        self,
        progress: Progress | None = None,
        choose_image: ImageChooser | None = None,
        recorder: Recorder | None = None,
        connect: Callable[..., Any] | None = None,
        suffix: Callable[[], str] = new_suffix,
        session_id: Callable[[], str] = new_session_id,
        clock: Callable[[], float] = time.monotonic,
        *,
        make_chooser: Callable[[Any], ImageChooser] | None = None,
        confirm: Callable[[str], bool] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        record_input: bool = False,
    ):
        self.progress: Progress = progress or (lambda event, **fields: None)
        self.choose_image = choose_image
        self.make_chooser = make_chooser
        self.recorder: Recorder = recorder or NullRecorder()
        self.connect = connect
        self.suffix = suffix
        self.session_id = session_id
        self.clock = clock
        self.confirm = confirm
        self.now = now
        self.record_input = record_input  # pass keystrokes to recorder.input (--record-input)
        # The newest copy of the target pod kdebug has seen (the PATCH answer, then watch events): the
        # next watch resumes from its resourceVersion instead of listing the pod again.
        self._newest_pod: dict | None = None
        self._fields: dict[str, Any] = {}  # what the record's start event will say
        self._started = False
        self.interrupt_handled = threading.Event()  # a KeyboardInterrupt reached kdebug's own handling

    # -- the session ---------------------------------------------------------------------------

    def run(self, request: AttachRequest, local: LocalStreams) -> int:
        try:
            exit_code = self._run(request, local)
        except InterruptedByUserError as exc:
            self.interrupt_handled.set()
            self._finish("interrupted", exc.exit_code, exc.message)
            raise
        except KdebugError as exc:
            self._finish(exc.kind, exc.exit_code, exc.message)
            raise
        except KeyboardInterrupt:
            self._finish("interrupted", 130, "interrupted")
            raise self._interrupted("interrupted") from None
        self._finish("ok" if exit_code == 0 else "failed", exit_code, None)
        return exit_code

    def _interrupted(self, message: str) -> InterruptedByUserError:
        self.interrupt_handled.set()
        return InterruptedByUserError(message)

    def _note(self, **fields: Any) -> None:
        """Remember record fields; after the start event they go out as an update."""
        fields = {k: v for k, v in fields.items() if v is not None}
        self._fields.update(fields)
        if self._started and fields:
            self.recorder.update(fields)

    def _start_record(self) -> None:
        if not self._started:
            self._started = True
            self.recorder.started(dict(self._fields))

    def _finish(self, status: str, exit_code: int | None, error: str | None) -> None:
        self._start_record()  # a session that failed early still leaves a whole record
        self.recorder.finished(status, exit_code, error)

    def _run(self, request: AttachRequest, local: LocalStreams) -> int:
        from kdebug.kube import client as kube
        from kdebug.kube.background import Pending
        from kdebug.security.preflight import PreflightResult, ask_preflight, check_preflight, run_preflight

        connect = self.connect or kube.connect
        client = connect(request.kubeconfig, request.context, request.namespace)
        namespace = request.namespace or client.namespace
        operation = "copy" if request.copy else "attach"
        self._note(
            server=getattr(client, "server", None),
            context=_context_of(client),
            namespace=namespace,
            command=list(request.command) or None,
        )
        # Requests that do not depend on the pod go out now, so their round trips overlap the pod's
        # lookup and the local work that follows: who we are, then (when TARGET names the pod) the
        # permission reviews, in order on one connection; the namespace on another.
        named_pod = _pod_named_by(request)

        def identity_and_reviews() -> tuple[dict[str, Any], PreflightResult | None]:
            identity = identity_fields(client, request.kubeconfig, request.context)
            if not named_pod:
                return identity, None
            return identity, ask_preflight(client, namespace, operation, pod_name=named_pod)

        early = Pending(identity_and_reviews)
        _prefetch_namespace(client, namespace)
        try:
            resolved, choice, plan = self._target_and_image(client, namespace, request, local)
        except BaseException:
            with contextlib.suppress(Exception):  # the error to report is the first one
                self._note(**early.result()[0])  # the record says who, whatever failed first
            raise
        identity, early_reviews = early.result()
        self._note(**identity)
        username = self._fields.get("kube_user")
        if early_reviews is not None and named_pod == resolved.pod_name:
            preflight = check_preflight(early_reviews, username)
        else:
            preflight = run_preflight(
                client, namespace, operation, pod_name=resolved.pod_name, username=username
            )
        self.progress("preflight", summary=preflight.summary)
        if request.copy:
            return self._run_copy(client, resolved, choice, plan, request, local)
        name, state, reused = self._reuse_or_add(client, resolved, choice, plan, request)
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
        return self._stream(client, resolved, name, state, plan, local)

    def _target_and_image(
        self, client: Any, namespace: str, request: AttachRequest, local: LocalStreams
    ) -> tuple[ResolvedTarget, ImageChoice, SessionPlan]:
        """The pod and container, refused if they cannot be debugged; the debug image; the plan."""
        from kdebug.kube import resolve

        resolved = resolve.resolve_target(
            client, namespace, request.target, request.selector, request.container
        )
        self._note(**target_fields(resolved))
        self.progress(
            "target",
            pod=resolved.pod_name,
            container=resolved.container,
            via=resolved.via,
            namespace=namespace,
        )
        if not request.copy:
            self._refuse_undebuggable(client, resolved)
        choice = self._image_choice(request, resolved, client)
        self._note(debug_image=choice.image, debug_image_reason=choice.reason)
        self.progress("image", image=choice.image, reason=choice.reason)
        plan = plan_session(request, local, choice)
        self._note(command=list(request.command) or list(choice.shell))
        return resolved, choice, plan

    def _stream(
        self,
        client: Any,
        resolved: ResolvedTarget,
        name: str,
        state: spec.StartupState,
        plan: SessionPlan,
        local: LocalStreams,
    ) -> int:
        if state.phase == "terminated":
            return self._finish_terminated(client, resolved, name, state, local)
        if plan.tty:
            return self._interactive(client, resolved, name, local)
        return self._non_interactive(client, resolved, name, plan, local)

    def _refuse_undebuggable(self, client: Any, resolved: ResolvedTarget) -> None:
        """targets.refuse_undebuggable, with --copy suggested where a copy can help."""
        from kdebug.kube import resolve, targets

        try:
            targets.refuse_undebuggable(
                resolved.pod, resolved.container, resolve.node_of(client, resolved.pod)
            )
        except NotSupportedError as exc:
            if "Windows" in exc.message:
                raise
            raise NotSupportedError(exc.message, hint=copy_hint(resolved)) from None

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
                self._note(ephemeral_container=existing, reused=True)
                self._start_record()
                return existing, container_state(resolved.pod, existing), True
        name = spec.unique_container_name(resolved.pod, self.suffix)
        try:
            self._add_container(client, resolved, choice, plan, request, name)
            if plan.attach:
                _import_while_waiting("websocket", "kdebug.kube.streaming")
            state = self._wait_until_started(client, resolved, name, request.timeout_s, bool(request.command))
        except KeyboardInterrupt:
            raise self._interrupted(
                f"interrupted while waiting for debug container {name} (it may still start in the pod)"
            ) from None
        return name, state, False

    def _image_choice(self, request: AttachRequest, resolved: ResolvedTarget, client: Any) -> ImageChoice:
        if request.image:
            return default_image_choice(request.image)
        chooser = self.choose_image
        if chooser is None and self.make_chooser is not None:
            chooser = self.make_chooser(client)
        if chooser is None:
            return default_image_choice(None)
        return chooser(resolved.pod, resolved.container)

    def _debug_container(
        self,
        client: Any,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
        name: str,
        command: list[str] | None = None,
    ) -> dict:
        """The debug container with the security decision applied (raises before any mutation)."""
        from kdebug.security.decision import apply_security, decide_security

        container = spec.build_ephemeral_container(
            name=name,
            image=choice.image,
            command=plan.command if command is None else command,
            target=resolved.container,
            session_id=self.session_id(),
            stdin=plan.stdin,
            tty=plan.tty,
            stdin_once=plan.stdin_once,
            idle_timeout_s=int(request.idle_timeout_s),
            run_as_user=choice.run_as_user,
            run_as_group=choice.run_as_group,
        )
        decision = decide_security(
            client,
            resolved.pod,
            resolved.container,
            request.profile,
            request.force,
            choice,
            debug_container=container,
        )
        self.progress("security", profile=decision.profile, reason=decision.reason)
        self._note(profile=decision.profile, security=decision.to_dict())
        return apply_security(container, decision)

    def _add_container(
        self,
        client: Any,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
        name: str,
    ) -> None:
        from kdebug.kube.resolve import pods_path

        container = self._debug_container(client, resolved, choice, plan, request, name)
        self.progress("adding", container=name, image=choice.image, pod=resolved.pod_name)
        self._note(ephemeral_container=name, reused=False)
        self._start_record()  # the start event comes before the container exists
        path = pods_path(resolved.namespace, resolved.pod_name) + "/ephemeralcontainers"
        try:
            self._newest_pod = client.patch(path, spec.ephemeral_patch(container), spec.PATCH_CONTENT_TYPE)
        except NotSupportedError as exc:  # ephemeral containers disabled: a copy still works
            raise NotSupportedError(exc.message, hint=copy_hint(resolved)) from None

    # -- copies --------------------------------------------------------------------------------

    def _run_copy(
        self,
        client: Any,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
        local: LocalStreams,
    ) -> int:
        """Create a copy of the pod with the debugger as a regular container, stream, then delete it."""
        from kdebug.debug import copy_pods as copying

        name = spec.unique_container_name(resolved.pod, self.suffix)
        shell = choice.shell[0] if choice.shell else "sh"
        container = self._debug_container(
            client, resolved, choice, plan, request, name, command=in_copy_command(shell, plan.command)
        )
        container["env"] = [e for e in container.get("env") or [] if e.get("name") != "KDEBUG_TARGET_ROOT"]
        self._note(ephemeral_container=name, reused=False)
        self._start_record()
        stored = copying.create_copy(
            client,
            resolved.pod,
            resolved.container,
            container,
            copy_command=request.copy_command,
            session_id=_env_value(container, "KDEBUG_SESSION_ID") or "",
            now=self.now(),
            suffix=self.suffix(),
        )
        copy_name = stored["metadata"]["name"]
        self._note(copy_pod=copy_name)
        self.progress("copy", copy=copy_name, pod=resolved.pod_name)
        copy_target = ResolvedTarget(resolved.namespace, stored, resolved.container, via=resolved.via)
        try:
            try:
                state = self._wait_until_started(
                    client, copy_target, name, request.timeout_s, bool(request.command)
                )
            except KeyboardInterrupt:
                raise self._interrupted(f"interrupted while waiting for copy {copy_name}") from None
            self.progress(
                "banner",
                pod=copy_name,
                namespace=resolved.namespace,
                target=resolved.container,
                container=name,
                image=choice.image,
                reason=choice.reason,
                reused=False,
                target_root=COPY_TARGET_ROOT,
            )
            return self._stream(client, copy_target, name, state, plan, local)
        finally:
            self._end_copy(client, resolved.namespace, copy_name, request, local)

    def _end_copy(
        self, client: Any, namespace: str, copy_name: str, request: AttachRequest, local: LocalStreams
    ) -> None:
        from kdebug.debug import copy_pods as copying

        keep = request.keep
        if keep is None:
            asked = local.interactive and self.confirm is not None
            keep = bool(asked and self.confirm and not self.confirm(f"delete the copy {copy_name}?"))
        if keep:
            self.progress("copy_kept", copy=copy_name, namespace=namespace)
            return
        with contextlib.suppress(KdebugError):  # the session's own outcome matters more than cleanup
            copying.delete_copy(client, namespace, copy_name)
            self.progress("copy_deleted", copy=copy_name)
            return
        self.progress("copy_kept", copy=copy_name, namespace=namespace)

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
        """Watch the one pod until an outcome or timeout: from the newest copy kdebug holds when it has
        one (one request), else list for a resourceVersion first (like kubectl)."""
        from kdebug.kube.resolve import pods_path

        deadline = self.clock() + timeout_s
        path = pods_path(resolved.namespace)
        selector = {"fieldSelector": f"metadata.name={resolved.pod_name}"}
        last = spec.StartupState("waiting", "Pending")
        newest = self._newest_pod_of(resolved)
        while True:
            if newest is not None:
                listing = {"items": [newest], "metadata": newest["metadata"]}
            else:
                listing = client.get(path, selector)
            newest = None  # a watch that ends without an outcome (410 Gone, timeout) lists next time
            for pod in listing.get("items") or []:
                self._newest_pod = pod
                last = container_state(pod, name)
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
                    self._newest_pod = obj
                    last = container_state(obj, name)
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

    def _newest_pod_of(self, resolved: ResolvedTarget) -> dict | None:
        """The newest copy of this pod kdebug has seen, if it has a resourceVersion to watch from."""
        pod = self._newest_pod
        meta = (pod or {}).get("metadata") or {}
        if pod is None or meta.get("name") != resolved.pod_name or not meta.get("resourceVersion"):
            return None
        if meta.get("namespace", resolved.namespace) != resolved.namespace:
            return None
        return pod

    @staticmethod
    def _outcome(pod: dict, name: str, until_terminated: bool) -> spec.StartupState | None:
        state = container_state(pod, name)
        if state.phase in ("terminated", "failed"):
            return state
        if state.phase == "running" and not until_terminated:
            return state
        return None

    # -- streaming -----------------------------------------------------------------------------

    def _attach_socket(
        self, client: Any, resolved: ResolvedTarget, name: str, *, stdin: bool, stdout: bool, tty: bool
    ) -> Any:
        from kdebug.kube.resolve import pods_path

        query = [
            ("container", name),
            ("stdin", _flag(stdin)),
            ("stdout", _flag(stdout)),
            ("stderr", _flag(stdout and not tty)),
            ("tty", _flag(tty)),
        ]
        from kdebug.kube.channels import SUBPROTOCOLS

        path = pods_path(resolved.namespace, resolved.pod_name) + "/attach"
        return client.websocket(path, query, SUBPROTOCOLS)

    def _interactive(self, client: Any, resolved: ResolvedTarget, name: str, local: LocalStreams) -> int:
        from kdebug.kube import streaming
        from kdebug.kube.resolve import pods_path

        try:
            ws = self._attach_socket(client, resolved, name, stdin=True, stdout=True, tty=True)
        except KdebugError:
            # a short COMMAND may end between "running" and the attach: show its log instead
            state = container_state(client.get(pods_path(resolved.namespace, resolved.pod_name)), name)
            if state.phase != "terminated":
                raise
            return self._finish_terminated(client, resolved, name, state, local)
        if self.record_input:
            ws = _InputTap(ws, self.recorder.input)
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
        from kdebug.kube.resolve import pods_path

        lost = f"connection to the cluster at {client.server} lost during the session"
        reattach = f"`kdebug attach {resolved.pod_name} -n {resolved.namespace}`"
        try:
            # short timeouts: after a dropped connection the server may be gone without a FIN
            pod = client.request(
                "GET", pods_path(resolved.namespace, resolved.pod_name), timeout=AFTER_LOSS_TIMEOUT
            )
        except KdebugError:
            raise UnreachableError(lost, hint=f"{name} may still run; reattach with {reattach}") from None
        self._newest_pod = pod
        state = container_state(pod, name)
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
            raise self._interrupted(
                f"interrupted; debug container {name} keeps running until its command ends"
            ) from None
        if logs.error is not None:
            raise logs.error
        return state.exit_code if state.exit_code is not None else 0

    def _feed_stdin(self, client: Any, resolved: ResolvedTarget, name: str, local: LocalStreams) -> None:
        from kdebug.kube import streaming

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
        from kdebug.kube.resolve import pods_path

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
