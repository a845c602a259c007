"""Orchestration of `kdebug run`: targets -> pods -> per pod (toolbox or --fresh) -> one result each.

Prints nothing: results go to `on_result` as each pod finishes. Every pod's run is one session in
the audit log (command, debug container, exit code, output transcript).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kdebug.automation import expect, fanout, runbook, toolbox
from kdebug.automation import results as runresult
from kdebug.automation.results import RunError, RunResult
from kdebug.debug import spec
from kdebug.debug.container import build_debug_container
from kdebug.debug.ids import new_suffix
from kdebug.debug.record import identity_fields
from kdebug.errors import InternalError, KdebugError, NotFoundError, UsageError
from kdebug.images.inspection import check_override_allowed, make_image_chooser
from kdebug.kube import client as kube
from kdebug.kube import paths, resolve, targets
from kdebug.kube.api import KubeApi
from kdebug.kube.background import Pending
from kdebug.models import ImageChoice, ResolvedTarget
from kdebug.security import profiles
from kdebug.security.decision import read_namespace_labels
from kdebug.security.profiles import AUTO
from kdebug.sessions.recorder import check_recording_policy, open_recorder

DEFAULT_PARALLEL = 10
DEFAULT_MAX_PODS = 50
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_OUTPUT = 1024 * 1024
REUSE_MARGIN_S = 60.0  # a toolbox must outlive the run's timeout by this much to be reused


@dataclass(frozen=True)
class Command:
    """What to run: an argv, or shell code run by the debug image's shell (`sh -c CODE`)."""

    argv: list[str] = field(default_factory=list)
    shell_code: str | None = None
    stdin: bytes | None = None

    def resolve(self, shell: list[str]) -> list[str]:
        return [*shell, "-c", self.shell_code] if self.shell_code is not None else list(self.argv)


@dataclass(frozen=True)
class RunRequest:
    """Everything `kdebug run` was asked for, parsed (durations in seconds, sizes in bytes)."""

    command: Command
    targets: list[str] = field(default_factory=list)
    selector: str | None = None
    all_pods: bool = False
    max_pods: int = DEFAULT_MAX_PODS
    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    container: str | None = None
    image: str | None = None
    profile: str | None = None  # None: auto, as for `attach`
    fresh: bool = False
    parallel: int = DEFAULT_PARALLEL
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_output: int = DEFAULT_MAX_OUTPUT
    record: bool = True
    reason: str | None = None
    lifetime_s: int = toolbox.DEFAULT_LIFETIME_S
    # what a runbook file asked for beyond `auto` and a CLI flag allowed (recorded with each step)
    allowed: tuple[str, ...] = ()


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- choosing pods -----------------------------------------------------------------------------


def running_pods(pods: list[dict]) -> list[dict]:
    chosen = [pod for pod in pods if targets.is_running(pod) and not targets.is_terminating(pod)]
    return sorted(chosen, key=lambda pod: pod["metadata"]["name"])


def check_pod_count(count: int, max_pods: int) -> None:
    if count > max_pods:
        raise UsageError(
            f"{count} pods match, more than --max-pods {max_pods}",
            hint=f"narrow the selector, or raise the cap with --max-pods {count}",
        )


def resolve_pods(client: KubeApi, namespace: str, request: RunRequest) -> list[ResolvedTarget]:
    """The pods to run in: every Running match with `-l SEL --all`, else one pod per TARGET."""
    if not request.targets and not request.selector:
        raise UsageError("missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)")
    if request.all_pods and not request.selector:
        raise UsageError("--all needs -l SELECTOR (every Running pod that matches it)")
    chosen: list[ResolvedTarget] = []
    if request.selector and request.all_pods:
        listing = client.get(paths.pods_path(namespace), {"labelSelector": request.selector})
        pods = running_pods(listing.get("items") or [])
        if not pods:
            raise NotFoundError(
                f"no Running pod matches selector {request.selector} in namespace {namespace}"
            )
        check_pod_count(len(pods), request.max_pods)
        chosen = [
            ResolvedTarget(
                namespace,
                pod,
                targets.choose_container(pod, request.container),
                f"selector {request.selector}",
            )
            for pod in pods
        ]
    elif request.selector:
        chosen.append(resolve.resolve_target(client, namespace, None, request.selector, request.container))
    for target in request.targets:
        chosen.append(resolve.resolve_target(client, namespace, target, None, request.container))
    unique = {(t.namespace, t.pod_name): t for t in chosen}
    check_pod_count(len(unique), request.max_pods)
    return list(unique.values())


# -- one pod -----------------------------------------------------------------------------------


@dataclass
class PodProgress:
    """What a pod's run has reached so far (kept for results of timed-out or cancelled pods)."""

    target: ResolvedTarget
    debug_container: str = ""
    debug_image: str = ""
    session_id: str = ""
    capture: toolbox.Captured | None = None


def partial_result(progress: PodProgress, error: RunError, duration_s: float) -> RunResult:
    capture = progress.capture
    return RunResult(
        pod=progress.target.pod_name,
        namespace=progress.target.namespace,
        container=progress.target.container,
        debug_container=progress.debug_container,
        debug_image=progress.debug_image,
        exit_code=None,
        stdout=capture.stdout.text() if capture else "",
        stderr=capture.stderr.text() if capture else "",
        duration_s=duration_s,
        session_id=progress.session_id,
        error=error,
        truncated=capture.truncated if capture else False,
    )


def outcome_error(status: str, error: BaseException | None, timeout_s: float) -> RunError:
    if status == fanout.TIMEOUT:
        return RunError(runresult.KIND_TIMEOUT, f"did not finish within --timeout ({timeout_s:g}s)")
    if status == fanout.CANCELLED:
        return RunError(runresult.KIND_CANCELLED, "cancelled before it finished (Ctrl-C)")
    if isinstance(error, KdebugError):
        return RunError(error.kind, error.message)
    internal = InternalError.wrapping(error or RuntimeError("no error"))
    return RunError(internal.kind, internal.message)


class Runner:
    """Runs one command in many pods; everything touching the outside world can be injected."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        connect: Callable[..., KubeApi] | None = None,
        open_recorder: Callable[..., Any] | None = None,
        choose_image: Callable[[dict, str], ImageChoice] | None = None,
        suffix: Callable[[], str] = new_suffix,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
    ):
        self.config = config or {}
        self.connect = connect
        self.open_recorder = open_recorder
        self.choose_image = choose_image
        self.suffix = suffix
        self.clock = clock
        self.wall_clock = wall_clock
        self._choices: dict[tuple[str, str], ImageChoice] = {}
        self._lock = threading.Lock()
        self._namespace_labels: dict[str, dict | None] = {}
        self._nodes: dict[str, dict | None] = {}
        self._node_lock = threading.Lock()
        self._recorder_lock = threading.Lock()
        self._identity: dict[str, Any] = {}  # who runs, on which server and context: in every record

    # -- setup ---------------------------------------------------------------------------------

    def connect_and_resolve(self, request: RunRequest) -> tuple[KubeApi, list[ResolvedTarget]]:
        self._check_before_cluster(request)
        if self.connect is not None:
            client = self.connect(request.kubeconfig, request.context, request.namespace)
        else:  # one pooled connection per worker, or each would reopen TLS
            pool = request.parallel + 4
            client = kube.connect(request.kubeconfig, request.context, request.namespace, pool_size=pool)
        namespace = request.namespace or client.namespace
        # asked while the pods are looked up, as attach does (kdebug.debug.early)
        identity = Pending(identity_fields, client, request.kubeconfig, request.context)
        pods = resolve_pods(client, namespace, request)
        self._identity = {"server": client.server, "context": client.cluster.context, **identity.result()}
        return client, pods

    def _check_before_cluster(self, request: RunRequest) -> None:
        check_recording_policy(self.config, record=request.record, reason=request.reason)
        if request.profile:
            profiles.validate_profile(request.profile)
        if request.image:
            check_override_allowed(self.config, request.image)

    # -- the fan-out ---------------------------------------------------------------------------

    def run(
        self, request: RunRequest, on_result: Callable[[RunResult], None] | None = None
    ) -> list[RunResult]:
        client, pods = self.connect_and_resolve(request)
        return self.run_on(
            client,
            pods,
            request,
            lambda target, control, progress: self.run_command(
                client, target, request, request.command, control, progress
            ),
            on_result,
        )

    def run_on(
        self,
        client: KubeApi,
        pods: list[ResolvedTarget],
        request: RunRequest,
        work: Callable[[ResolvedTarget, fanout.Control, PodProgress], RunResult],
        on_result: Callable[[RunResult], None] | None = None,
    ) -> list[RunResult]:
        """Fan `work` out over the pods; timeouts, failures and cancellation become results too."""
        progress = {id(target): PodProgress(target) for target in pods}

        def convert(outcome: fanout.Outcome[ResolvedTarget, RunResult]) -> RunResult:
            if outcome.status == fanout.DONE and outcome.result is not None:
                return outcome.result
            error = outcome_error(outcome.status, outcome.error, request.timeout_s)
            return partial_result(progress[id(outcome.item)], error, outcome.duration_s)

        def report(outcome: fanout.Outcome[ResolvedTarget, RunResult]) -> None:
            if on_result is not None:
                on_result(convert(outcome))

        outcomes = fanout.fan_out(
            pods,
            lambda target, control: work(target, control, progress[id(target)]),
            parallel=request.parallel,
            timeout_s=request.timeout_s,
            on_outcome=report,
            clock=self.clock,
        )
        return [convert(outcome) for outcome in outcomes]

    # -- one command in one pod ----------------------------------------------------------------

    def run_command(
        self,
        client: KubeApi,
        target: ResolvedTarget,
        request: RunRequest,
        command: Command,
        control: fanout.Control,
        progress: PodProgress,
        step: str | None = None,
    ) -> RunResult:
        """One command in one pod as one audit session; a KdebugError becomes the result's error."""
        started = self.clock()
        recorder = self._recorder(request)
        progress.session_id = recorder.session_id if recorder else ""
        progress.capture = toolbox.new_capture(request.max_output)
        # refused before the full start event (e.g. pod not running): the record still names the pod
        unstarted: dict[str, Any] | None = {
            **self._identity,
            "namespace": target.namespace,
            "pod": target.pod_name,
            "container": target.container,
            "mode": "run",
        }
        try:
            targets.refuse_undebuggable(target.pod, target.container, self._node(client, target.pod))
            choice = self._image_choice(client, target, request)
            progress.debug_image = choice.image
            argv = command.resolve(choice.shell)
            if not argv:
                raise UsageError("missing COMMAND: put it after --, or use --script FILE")
            container, profile = self._debug_container(
                client, target, request, choice, argv, progress.session_id
            )
            progress.debug_container = container["name"]
            if recorder:
                fields = self._record_fields(target, choice, container, argv, request, step, profile)
                recorder.started({**self._identity, **fields})
                unstarted = None
            on_output = recorder.output if recorder else None
            if request.fresh:
                if command.stdin is not None:
                    raise UsageError("--fresh cannot feed stdin (--stdin-file): the toolbox can")
                toolbox.run_fresh(
                    client, target.namespace, target.pod, container, progress.capture, control, on_output
                )
            else:
                name, reused = toolbox.ensure_toolbox(
                    client,
                    target.namespace,
                    target.pod,
                    container,
                    control,
                    self.wall_clock(),
                    request.timeout_s + REUSE_MARGIN_S,
                )
                progress.debug_container = name
                if recorder:
                    recorder.update({"ephemeral_container": name, "reused": reused})
                toolbox.exec_command(
                    client,
                    target.namespace,
                    target.pod_name,
                    name,
                    argv,
                    command.stdin,
                    progress.capture,
                    control,
                    on_output,
                )
        except KdebugError as exc:
            self._finish(recorder, control, None, exc, unstarted)
            return partial_result(progress, RunError(exc.kind, exc.message), self.clock() - started)
        except BaseException as exc:
            self._finish(recorder, control, None, exc, unstarted)
            raise
        capture = progress.capture
        self._finish(recorder, control, capture.exit_code, capture.error, unstarted)
        if control.aborted:
            error = outcome_error(control.aborted, None, request.timeout_s)
            return partial_result(progress, error, self.clock() - started)
        if capture.error is not None:
            return partial_result(
                progress, RunError(capture.error.kind, capture.error.message), self.clock() - started
            )
        exit_code = capture.exit_code if capture.exit_code is not None else 0
        return RunResult(
            pod=target.pod_name,
            namespace=target.namespace,
            container=target.container,
            debug_container=progress.debug_container,
            debug_image=progress.debug_image,
            exit_code=exit_code,
            stdout=capture.stdout.text(),
            stderr=capture.stderr.text(),
            duration_s=self.clock() - started,
            session_id=progress.session_id,
            error=runresult.error_for_exit(exit_code),
            truncated=capture.truncated,
        )

    def _recorder(self, request: RunRequest) -> Any:
        opener = self.open_recorder or open_recorder
        # one at a time: concurrent first opens of a new store race on its setup (WAL switch) and
        # fail as "busy"; appends afterwards wait for each other by themselves
        with self._recorder_lock:
            return opener(self.config, record=request.record, reason=request.reason)

    @staticmethod
    def _finish(
        recorder: Any,
        control: fanout.Control,
        exit_code: int | None,
        error: BaseException | None,
        unstarted: dict[str, Any] | None,
    ) -> None:
        if recorder is None:
            return
        if unstarted is not None:
            recorder.started(unstarted)
        if control.aborted == fanout.CANCELLED or isinstance(error, KeyboardInterrupt):
            recorder.finished("interrupted", exit_code, "cancelled")
        elif control.aborted == fanout.TIMEOUT:
            recorder.finished("timeout", exit_code, "did not finish within --timeout")
        elif isinstance(error, KdebugError):
            recorder.finished(error.kind, exit_code, error.message)
        elif error is not None:  # a bug: recorded as failed, with the exception's type and a capped message
            internal = InternalError.wrapping(error)
            recorder.finished(internal.kind, exit_code, internal.message)
        else:
            recorder.finished("ok" if exit_code == 0 else "failed", exit_code, None)

    @staticmethod
    def _record_fields(
        target: ResolvedTarget,
        choice: ImageChoice,
        container: dict,
        argv: list[str],
        request: RunRequest,
        step: str | None,
        profile: str,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "namespace": target.namespace,
            "pod": target.pod_name,
            "container": target.container,
            "debug_image": choice.image,
            "debug_image_reason": choice.reason,
            "ephemeral_container": container["name"],
            "command": argv,
            "mode": "run",
            "fresh": request.fresh,
            "profile": profile,
        }
        if step is not None:
            fields["runbook_step"] = step
        if request.allowed:
            fields["runbook_allowed"] = list(request.allowed)
        return fields

    # -- choices per pod -----------------------------------------------------------------------

    def _node(self, client: KubeApi, pod: dict) -> dict | None:
        """The pod's node, asked once per node name (refuse_undebuggable reads its OS label)."""
        node_name = pod.get("spec", {}).get("nodeName", "")
        with self._node_lock:  # held while fetching: one request per node, not one per worker
            if node_name not in self._nodes:
                self._nodes[node_name] = resolve.node_of(client, pod)
            return self._nodes[node_name]

    def _image_choice(self, client: KubeApi, target: ResolvedTarget, request: RunRequest) -> ImageChoice:
        image = next(
            (
                c.get("image", "")
                for c in target.pod["spec"].get("containers") or []
                if c.get("name") == target.container
            ),
            "",
        )
        key = (image, target.container)
        with self._lock:
            if key in self._choices:
                return self._choices[key]
        choice = self._chooser(client, request)(target.pod, target.container)
        with self._lock:
            self._choices[key] = choice
        return choice

    def _chooser(self, client: KubeApi, request: RunRequest) -> Callable[[dict, str], ImageChoice]:
        """kdebug.images.inspection's chooser: --image or the classification, mirrored and allowed."""
        with self._lock:
            if self.choose_image is None:
                self.choose_image = make_image_chooser(
                    self.config, registry_client=False, kube_client=client, image=request.image
                )
            return self.choose_image

    def _debug_container(
        self,
        client: KubeApi,
        target: ResolvedTarget,
        request: RunRequest,
        choice: ImageChoice,
        argv: list[str],
        session_id: str,
    ) -> tuple[dict, str]:
        """The toolbox (or --fresh container) dict from the one builder, and its security profile:
        the same decision as `attach` (auto by default; a profile the namespace refuses raises here,
        before any mutating request)."""
        if request.fresh:
            name, command = spec.unique_container_name(target.pod, self.suffix), argv
        else:
            name = toolbox.toolbox_name(target.pod, self.suffix)
            command = toolbox.idle_command(choice.shell, request.lifetime_s)
        built = build_debug_container(
            client,
            target.pod,
            target.container,
            choice,
            name=name,
            command=command,
            session_id=session_id,
            stdin=False,
            tty=False,
            profile=request.profile or AUTO,
            namespace_labels=self._labels(client, target.namespace),
        )
        container = built.container
        if not request.fresh:
            container = toolbox.build_toolbox(container, request.lifetime_s)
            # a toolbox serves many sessions: its own env must not name one of them
            container["env"] = [e for e in container["env"] if e["name"] != "KDEBUG_SESSION_ID"]
        return container, built.decision.profile

    def _labels(self, client: KubeApi, namespace: str) -> dict | None:
        """The namespace's labels, read once per namespace (None: unreadable, and asked again per pod)."""
        with self._lock:
            if namespace in self._namespace_labels:
                return self._namespace_labels[namespace]
        labels = read_namespace_labels(client, namespace)
        with self._lock:
            self._namespace_labels[namespace] = labels
        return labels


# -- runbooks ----------------------------------------------------------------------------------


def step_command(step: Any) -> Command:
    return Command(argv=list(step.argv or []), shell_code=step.shell_code)


def run_runbook(
    runner: Runner, book: Any, request: RunRequest, on_pod: Callable[[Any], None] | None = None
) -> list[Any]:
    """Every step of `book` in every pod (steps in order per pod, pods in parallel) -> PodReports.

    A step's failure stops that pod's later steps (`on_failure: stop`, marked skipped) or not
    (`continue`); Ctrl-C marks what had not finished as cancelled.
    """
    client, pods = runner.connect_and_resolve(request)
    done: dict[int, list[Any]] = {id(target): [] for target in pods}

    def steps_in(target: ResolvedTarget, control: fanout.Control) -> Any:
        progress = PodProgress(target)
        outcomes = done[id(target)]
        stopped = False
        for step in book.steps:
            if stopped or control.aborted:
                outcomes.append(
                    runbook.StepOutcome(step.name, runbook.CANCELLED if control.aborted else runbook.SKIPPED)
                )
                continue
            step_request = replace(request, timeout_s=step.timeout_s)
            with control.step(step.timeout_s) as step_control:
                result = runner.run_command(
                    client, target, step_request, step_command(step), step_control, progress, step=step.name
                )
            outcome = runbook.judge_step(step, result, expect.search_bounded)
            outcomes.append(outcome)
            stopped = runbook.stops_after(step, outcome)
        return _pod_report(target, outcomes)

    def report_of(outcome: fanout.Outcome[ResolvedTarget, Any]) -> Any:
        if outcome.status == fanout.DONE and outcome.result is not None:
            return outcome.result
        finished = list(done[id(outcome.item)])
        names = {o.step for o in finished}
        status = runbook.CANCELLED if outcome.status in (fanout.CANCELLED, fanout.TIMEOUT) else runbook.FAILED
        if outcome.status == fanout.FAILED and outcome.error is not None:
            error = outcome_error(outcome.status, outcome.error, request.timeout_s)
            failed = RunResult(
                pod=outcome.item.pod_name,
                namespace=outcome.item.namespace,
                container=outcome.item.container,
                error=error,
            )
            finished.append(runbook.StepOutcome("(runbook)", runbook.FAILED, failed))
        finished += [runbook.StepOutcome(s.name, status) for s in book.steps if s.name not in names]
        return _pod_report(outcome.item, finished)

    outcomes = fanout.fan_out(
        pods,
        steps_in,
        parallel=request.parallel,
        timeout_s=None,
        on_outcome=(lambda outcome: on_pod(report_of(outcome))) if on_pod else None,
        clock=runner.clock,
    )
    return [report_of(outcome) for outcome in outcomes]


def _pod_report(target: ResolvedTarget, outcomes: list[Any]) -> runbook.PodReport:
    return runbook.PodReport(target.pod_name, target.namespace, target.container, list(outcomes))
