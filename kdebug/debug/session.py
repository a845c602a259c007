"""Orchestration of one `kdebug attach` session. Prints nothing: progress goes through a callback.

resolve target -> refuse what cannot work -> choose image -> reuse or add the ephemeral container (or
create a copy) -> watch until it runs (or fails, or --timeout) -> stream -> exit code. The parts live
next to this module: request (what was asked, the plan), early (identity, reviews and the namespace,
sent before the pod is known), record (the audit record), container (the one builder, through the
security decision), reuse, copy, wait (the watch), stream.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kdebug.debug import copy_pods, spec
from kdebug.debug.container import build_debug_container
from kdebug.debug.copy import end_copy, without_target_root
from kdebug.debug.copy_spec import COPY_TARGET_ROOT, in_copy_command
from kdebug.debug.early import EarlyRequests
from kdebug.debug.ids import new_session_id, new_suffix
from kdebug.debug.record import NullRecorder, Recorder, SessionRecord, target_fields
from kdebug.debug.request import AttachRequest, LocalStreams, SessionPlan, plan_session
from kdebug.debug.reuse import reusable_shell
from kdebug.debug.stream import Streamer
from kdebug.debug.wait import start_failure, wait_for_container
from kdebug.durations import format_duration
from kdebug.errors import (
    InternalError,
    InterruptedByUserError,
    KdebugError,
    NotSupportedError,
    StartFailedError,
    WaitTimeoutError,
)
from kdebug.images.inspection import make_image_chooser
from kdebug.kube import client as kube
from kdebug.kube import paths, resolve
from kdebug.kube.api import KubeApi
from kdebug.kube.background import Pending
from kdebug.kube.targets import copy_hint, refuse_undebuggable
from kdebug.kube.watch import deadline_in
from kdebug.models import ImageChoice, ResolvedTarget

__all__ = ["AttachRequest", "Debugger", "LocalStreams"]

Progress = Callable[..., None]  # progress(event: str, **fields)
ImageChooser = Callable[[dict, str], ImageChoice]
# make_chooser(client, image): the chooser for this session; `image` is --image (None: classify)
MakeChooser = Callable[[KubeApi, "str | None"], ImageChooser]


def _import_while_waiting(*modules: str) -> None:
    """Import `modules` on a thread while the container starts, so loading the websocket client does not
    come between "running" and the shell's prompt (a deliberate preload, not a lazy import)."""

    def import_all() -> None:
        for module in modules:
            importlib.import_module(module)

    Pending(import_all)


def _env_value(container: dict, name: str) -> str | None:
    return next((e.get("value") for e in container.get("env") or [] if e.get("name") == name), None)


class Debugger:
    """Runs one session; every dependency that touches the outside world can be injected.

    `make_chooser(client, image)` builds the image chooser once the cluster client exists (the
    catalog's classification needs it for pull secrets); `choose_image` is a ready chooser (tests);
    with neither, kdebug.images.inspection's chooser with the default configuration is used.
    `confirm(question)` asks the user whether to delete a copy (interactive sessions only).
    """

    def __init__(
        self,
        progress: Progress | None = None,
        choose_image: ImageChooser | None = None,
        recorder: Recorder | None = None,
        connect: Callable[..., KubeApi] | None = None,
        suffix: Callable[[], str] = new_suffix,
        session_id: Callable[[], str] = new_session_id,
        clock: Callable[[], float] = time.monotonic,
        *,
        make_chooser: MakeChooser | None = None,
        confirm: Callable[[str], bool] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        record_input: bool = False,
    ):
        self.progress: Progress = progress or (lambda event, **fields: None)
        self.choose_image = choose_image
        self.make_chooser = make_chooser
        self.recorder: Recorder = recorder or NullRecorder()
        self.record = SessionRecord(self.recorder)
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
        self.interrupt_handled = threading.Event()  # a KeyboardInterrupt reached kdebug's own handling

    # -- the session ---------------------------------------------------------------------------

    def run(self, request: AttachRequest, local: LocalStreams) -> int:
        try:
            exit_code = self._run(request, local)
        except InterruptedByUserError as exc:
            self.interrupt_handled.set()
            self.record.finish("interrupted", exc.exit_code, exc.message)
            raise
        except KdebugError as exc:
            self.record.finish(exc.kind, exc.exit_code, exc.message)
            raise
        except KeyboardInterrupt:
            self.record.finish("interrupted", 130, "interrupted")
            raise self._interrupted("interrupted") from None
        except Exception as exc:  # a bug: still recorded as a failed session, then one line
            error = InternalError.wrapping(exc)
            self.record.finish(error.kind, error.exit_code, error.message)
            raise error from exc
        self.record.finish("ok" if exit_code == 0 else "failed", exit_code, None)
        return exit_code

    def _interrupted(self, message: str) -> InterruptedByUserError:
        self.interrupt_handled.set()
        return InterruptedByUserError(message)

    def _run(self, request: AttachRequest, local: LocalStreams) -> int:
        connect = self.connect or kube.connect
        client = connect(request.kubeconfig, request.context, request.namespace)
        namespace = request.namespace or client.namespace
        self.record.note(
            server=client.server,
            context=client.cluster.context,
            namespace=namespace,
            command=list(request.command) or None,
        )
        early = EarlyRequests(client, request, namespace, "copy" if request.copy else "attach")
        try:
            resolved, choice, plan = self._target_and_image(client, namespace, request, local)
        except BaseException:
            with contextlib.suppress(Exception):  # the error to report is the first one
                self.record.note(**early.identity())  # the record says who, whatever failed first
            raise
        self.record.note(**early.identity())
        preflight = early.preflight(resolved.pod_name, self.record.fields.get("kube_user"))
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
        return self._streamer(client, resolved, name, local).stream(state, plan)

    def _target_and_image(
        self, client: KubeApi, namespace: str, request: AttachRequest, local: LocalStreams
    ) -> tuple[ResolvedTarget, ImageChoice, SessionPlan]:
        """The pod and container, refused if they cannot be debugged; the debug image; the plan."""
        resolved = resolve.resolve_target(
            client, namespace, request.target, request.selector, request.container
        )
        self.record.note(**target_fields(resolved))
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
        self.record.note(debug_image=choice.image, debug_image_reason=choice.reason)
        self.progress("image", image=choice.image, reason=choice.reason)
        plan = plan_session(request, local, choice)
        self.record.note(command=list(request.command) or list(choice.shell))
        return resolved, choice, plan

    def _streamer(
        self, client: KubeApi, resolved: ResolvedTarget, name: str, local: LocalStreams
    ) -> Streamer:
        return Streamer(
            client=client,
            resolved=resolved,
            name=name,
            local=local,
            recorder=self.recorder,
            wait=lambda timeout_s, until_terminated: self._watch_container(
                client, resolved, name, timeout_s, until_terminated
            ),
            interrupted=self._interrupted,
            seen_pod=self._remember,
            record_input=self.record_input,
        )

    def _refuse_undebuggable(self, client: KubeApi, resolved: ResolvedTarget) -> None:
        """refuse_undebuggable, with --copy suggested where a copy can help."""
        try:
            refuse_undebuggable(resolved.pod, resolved.container, resolve.node_of(client, resolved.pod))
        except NotSupportedError as exc:
            if "Windows" in exc.message:
                raise
            raise NotSupportedError(
                exc.message, hint=copy_hint(resolved.pod_name, resolved.namespace)
            ) from None

    def _reuse_or_add(
        self,
        client: KubeApi,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
    ) -> tuple[str, spec.StartupState, bool]:
        """A running kdebug shell to take over, else a new debug container that has started."""
        user = self.record.fields.get("kube_user")
        reusable = reusable_shell(resolved.pod, choice.image, resolved.container, plan, user, request.join)
        if reusable is not None:
            existing = reusable.container
            self.progress("reusing", container=existing, pod=resolved.pod_name)
            self.record.note(ephemeral_container=existing, reused=True)
            if reusable.joined:  # another person's live shell: say so in both places
                self.progress("joining", container=existing, owner=reusable.owner or "unknown")
                self.record.note(joined=reusable.session_id or "unknown", joined_user=reusable.owner)
            self.record.start()
            return existing, reusable.state, True
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

    def _image_choice(self, request: AttachRequest, resolved: ResolvedTarget, client: KubeApi) -> ImageChoice:
        chooser = self.choose_image
        if chooser is None and self.make_chooser is not None:
            chooser = self.make_chooser(client, request.image)
        if chooser is None:
            chooser = make_image_chooser({}, kube_client=client, image=request.image)
        return chooser(resolved.pod, resolved.container)

    def _debug_container(
        self,
        client: KubeApi,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
        name: str,
        command: list[str] | None = None,
    ) -> dict:
        """The debug container with the security decision applied (raises before any mutation)."""
        built = build_debug_container(
            client,
            resolved.pod,
            resolved.container,
            choice,
            name=name,
            command=plan.command if command is None else command,
            session_id=self.session_id(),
            stdin=plan.stdin,
            tty=plan.tty,
            stdin_once=plan.stdin_once,
            idle_timeout_s=int(request.idle_timeout_s),
            profile=request.profile,
            force=request.force,
            owner=self.record.fields.get("kube_user"),
        )
        decision = built.decision
        self.progress("security", profile=decision.profile, reason=decision.reason)
        self.record.note(profile=decision.profile, security=decision.to_dict())
        return built.container

    def _add_container(
        self,
        client: KubeApi,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
        name: str,
    ) -> None:
        container = self._debug_container(client, resolved, choice, plan, request, name)
        self.progress("adding", container=name, image=choice.image, pod=resolved.pod_name)
        self.record.note(ephemeral_container=name, reused=False)
        self.record.start()  # the start event comes before the container exists
        path = paths.pod_path(resolved.namespace, resolved.pod_name, "ephemeralcontainers")
        try:
            self._newest_pod = client.patch(path, spec.ephemeral_patch(container), spec.PATCH_CONTENT_TYPE)
        except NotSupportedError as exc:  # ephemeral containers disabled: a copy still works
            raise NotSupportedError(
                exc.message, hint=copy_hint(resolved.pod_name, resolved.namespace)
            ) from None

    # -- copies --------------------------------------------------------------------------------

    def _run_copy(
        self,
        client: KubeApi,
        resolved: ResolvedTarget,
        choice: ImageChoice,
        plan: SessionPlan,
        request: AttachRequest,
        local: LocalStreams,
    ) -> int:
        """Create a copy of the pod with the debugger as a regular container, stream, then delete it."""
        name = spec.unique_container_name(resolved.pod, self.suffix)
        shell = choice.shell[0] if choice.shell else "sh"
        container = self._debug_container(
            client, resolved, choice, plan, request, name, command=in_copy_command(shell, plan.command)
        )
        container = without_target_root(container)
        self.record.note(ephemeral_container=name, reused=False)
        self.record.start()
        stored = copy_pods.create_copy(
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
        self.record.note(copy_pod=copy_name)
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
            return self._streamer(client, copy_target, name, local).stream(state, plan)
        finally:
            end_copy(
                client,
                resolved.namespace,
                copy_name,
                self._keep_copy(copy_name, request, local),
                self.progress,
            )

    def _keep_copy(self, copy_name: str, request: AttachRequest, local: LocalStreams) -> bool:
        if request.keep is not None:
            return request.keep
        asked = local.interactive and self.confirm is not None
        return bool(asked and self.confirm and not self.confirm(f"delete the copy {copy_name}?"))

    # -- waiting -------------------------------------------------------------------------------

    def _wait_until_started(
        self, client: KubeApi, resolved: ResolvedTarget, name: str, timeout_s: float, has_command: bool
    ) -> spec.StartupState:
        pod, state = self._watch_container(client, resolved, name, timeout_s, until_terminated=False)
        if state.phase == "failed":
            raise start_failure(pod, name, state)
        if state.phase == "terminated" and not has_command:
            detail = f"exit code {state.exit_code}" + (f", {state.reason}" if state.reason else "")
            raise StartFailedError(
                f"debug container {name} ended before kdebug could attach ({detail})"
                + (f": {state.message.strip()}" if state.message.strip() else "")
            )
        return state

    def _watch_container(
        self, client: KubeApi, resolved: ResolvedTarget, name: str, timeout_s: float, until_terminated: bool
    ) -> tuple[dict, spec.StartupState]:
        """Watch the one pod until an outcome or timeout: from the newest copy kdebug holds when it has
        one (one request), else list for a resourceVersion first (like kubectl)."""
        verb = "finish" if until_terminated else "start"

        def timed_out(last: spec.StartupState) -> WaitTimeoutError:
            return WaitTimeoutError(
                f"debug container {name} did not {verb} within {format_duration(timeout_s)} "
                f"(last state: {last.reason or last.phase})",
                hint="the container stays in the pod and may still start; raise --timeout to wait longer",
            )

        def seen(pod: dict, state: spec.StartupState) -> None:
            self._remember(pod)
            self.progress("waiting", container=name, state=state.reason or state.phase)

        return wait_for_container(
            client,
            resolved.namespace,
            resolved.pod_name,
            name,
            deadline_in(timeout_s, self.clock),
            until_terminated=until_terminated,
            timeout_error=timed_out,
            start=self._newest_pod_of(resolved),
            on_pod=seen,
        )

    def _remember(self, pod: dict) -> None:
        self._newest_pod = pod

    def _newest_pod_of(self, resolved: ResolvedTarget) -> dict | None:
        """The newest copy of this pod kdebug has seen, if it has a resourceVersion to watch from."""
        pod = self._newest_pod
        meta = (pod or {}).get("metadata") or {}
        if pod is None or meta.get("name") != resolved.pod_name or not meta.get("resourceVersion"):
            return None
        if meta.get("namespace", resolved.namespace) != resolved.namespace:
            return None
        return pod
