"""The kdebug toolbox: one long-lived ephemeral container per pod that `kdebug run` execs into.

Ephemeral containers can never be removed, so `run` must not add one per run. The toolbox
(`kdebug-tbx-XXXXX`) starts once with an idle command, `sh -c 'sleep LIFETIME'`, so it ends by
itself after its lifetime (default 1 hour, in its env as KDEBUG_TOOLBOX_LIFETIME); a later run
reuses it while it runs with the same image, target and security context and has time left, and
adds a new one otherwise. Commands run in it through `pods/exec` (no TTY) with stdout and stderr
kept apart and capped. `--fresh` instead adds a container whose main process is the command:
its output comes from the log and its exit code from the terminated state.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kdebug.automation.fanout import Control
from kdebug.debug import spec, wait
from kdebug.errors import KdebugError, StartFailedError, UnreachableError, WaitTimeoutError
from kdebug.kube import paths, streaming
from kdebug.kube.api import KubeApi, WebSocketLike
from kdebug.kube.channels import SUBPROTOCOLS

TOOLBOX_PREFIX = "kdebug-tbx-"
DEFAULT_LIFETIME_S = 3600
LIFETIME_ENV = "KDEBUG_TOOLBOX_LIFETIME"


# -- PURE: the toolbox container and the reuse decision ----------------------------------------


def toolbox_name(pod: dict, next_suffix: Callable[[], str]) -> str:
    taken = spec.all_container_names(pod)
    for _ in range(100):
        name = TOOLBOX_PREFIX + next_suffix()
        if name not in taken:
            return name
    raise RuntimeError("could not find a free toolbox container name")


def idle_command(shell: list[str], lifetime_s: int) -> list[str]:
    """The toolbox's main process: the debug image's shell sleeping out the toolbox's lifetime."""
    return [*shell, "-c", f"sleep {int(lifetime_s)}"]


def build_toolbox(container: dict, lifetime_s: int) -> dict:
    """Mark a built ephemeral container (spec.build_ephemeral_container) as a toolbox."""
    result = dict(container)
    result["env"] = [*(container.get("env") or []), {"name": LIFETIME_ENV, "value": str(int(lifetime_s))}]
    return result


def toolbox_lifetime(container: dict) -> int | None:
    for item in container.get("env") or []:
        if item.get("name") == LIFETIME_ENV:
            with contextlib.suppress(TypeError, ValueError):
                return int(item.get("value"))
    return None


def seconds_left(pod: dict, name: str, lifetime_s: int, now: datetime) -> float:
    """How long a running toolbox still lives (its startedAt + lifetime - now)."""
    started = ((spec.ephemeral_status(pod, name).get("state") or {}).get("running") or {}).get("startedAt")
    if not started:
        return 0.0
    started_at = datetime.fromisoformat(started.replace("Z", "+00:00"))
    return lifetime_s - (now - started_at).total_seconds()


def find_toolbox(pod: dict, wanted: dict, now: datetime, min_left_s: float) -> str | None:
    """A running toolbox like `wanted` (image, target, security context) with min_left_s to live."""
    for container in pod.get("spec", {}).get("ephemeralContainers") or []:
        name = container.get("name", "")
        if not name.startswith(TOOLBOX_PREFIX):
            continue
        if any(container.get(key) != wanted.get(key) for key in ("image", "targetContainerName")):
            continue
        if (container.get("securityContext") or {}) != (wanted.get("securityContext") or {}):
            continue
        lifetime = toolbox_lifetime(container)
        if lifetime is None or "running" not in (spec.ephemeral_status(pod, name).get("state") or {}):
            continue
        if seconds_left(pod, name, lifetime, now) > min_left_s:
            return name
    return None


def exec_query(container: str, argv: list[str], stdin: bool) -> list[tuple[str, str]]:
    flag = "true" if stdin else "false"
    query = [
        ("container", container),
        ("stdin", flag),
        ("stdout", "true"),
        ("stderr", "true"),
        ("tty", "false"),
    ]
    return query + [("command", arg) for arg in argv]


# -- waiting for a container -------------------------------------------------------------------


def wait_for_container(
    client: KubeApi, namespace: str, pod_name: str, name: str, control: Control, until_terminated: bool
) -> tuple[dict, spec.StartupState]:
    """Watch the pod until `name` runs (or ends); errors for failures, the deadline and Ctrl-C."""
    verb = "finish" if until_terminated else "start"

    def timed_out(last: spec.StartupState) -> WaitTimeoutError:
        return WaitTimeoutError(
            f"debug container {name} did not {verb} in time (last state: {last.reason or last.phase})"
        )

    pod, state = wait.wait_for_container(
        client,
        namespace,
        pod_name,
        name,
        lambda: 0.0 if control.aborted else control.remaining(),
        until_terminated=until_terminated,
        timeout_error=timed_out,
    )
    if state.phase == "failed":
        raise wait.start_failure(pod, name, state)
    return pod, state


def add_container(client: KubeApi, namespace: str, pod_name: str, container: dict) -> None:
    path = paths.pod_path(namespace, pod_name, "ephemeralcontainers")
    client.patch(path, spec.ephemeral_patch(container), spec.PATCH_CONTENT_TYPE)


def ensure_toolbox(
    client: KubeApi,
    namespace: str,
    pod: dict,
    wanted: dict,
    control: Control,
    now: datetime,
    min_left_s: float,
) -> tuple[str, bool]:
    """The toolbox to exec into, and whether it was reused; adds `wanted` when none fits."""
    name = find_toolbox(pod, wanted, now, min_left_s)
    if name is not None:
        return name, True
    pod_name = pod["metadata"]["name"]
    # `pod` may be a snapshot from before an earlier step (or another kdebug) added a toolbox: ask
    # the server once more before adding one, since ephemeral containers can never be removed
    current = client.get(paths.pod_path(namespace, pod_name))
    name = find_toolbox(current, wanted, now, min_left_s)
    if name is not None:
        return name, True
    add_container(client, namespace, pod_name, wanted)
    _, state = wait_for_container(
        client, namespace, pod_name, wanted["name"], control, until_terminated=False
    )
    if state.phase == "terminated":
        raise StartFailedError(
            f"toolbox {wanted['name']} ended right after it started "
            f"(exit code {state.exit_code}{', ' + state.reason if state.reason else ''})"
        )
    return wanted["name"], False


# -- running a command -------------------------------------------------------------------------


class OutputBudget:
    """The bytes a pod's output may still take: stdout and stderr draw from one `--max-output`."""

    def __init__(self, limit: int):
        self.left = limit
        self.lock = threading.Lock()

    def take(self, wanted: int) -> int:
        with self.lock:
            granted = min(wanted, max(0, self.left))
            self.left -= granted
            return granted


class CappedBuffer:
    """A file-like sink that keeps bytes while its budget lasts and counts the rest."""

    def __init__(self, limit: int | OutputBudget):
        self.budget = limit if isinstance(limit, OutputBudget) else OutputBudget(limit)
        self.data = bytearray()
        self.total = 0

    def write(self, chunk: bytes) -> int:
        kept = self.budget.take(len(chunk))
        self.data += chunk[:kept]
        self.total += len(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", "replace")


@dataclass
class Captured:
    """What a command left: stdout/stderr buffers (a shared cap), its exit code or why there is none."""

    stdout: CappedBuffer
    stderr: CappedBuffer
    exit_code: int | None = None
    error: KdebugError | None = None

    @property
    def truncated(self) -> bool:
        return self.stdout.truncated or self.stderr.truncated


def new_capture(max_output: int) -> Captured:
    budget = OutputBudget(max_output)
    return Captured(CappedBuffer(budget), CappedBuffer(budget))


def exec_command(
    client: KubeApi,
    namespace: str,
    pod_name: str,
    container: str,
    argv: list[str],
    stdin: bytes | None,
    capture: Captured,
    control: Control,
    on_output: Callable[[bytes], None] | None = None,
) -> None:
    """Run argv in the container over pods/exec; fills `capture` (exit code or error)."""
    path = paths.pod_path(namespace, pod_name, "exec")
    ws = client.websocket(path, exec_query(container, argv, stdin is not None), SUBPROTOCOLS)
    stdin_fd = _feed(stdin) if stdin is not None else None
    target = streaming.StreamTarget(
        stdin_fd=stdin_fd,
        stdout=capture.stdout,  # type: ignore[arg-type]
        stderr=capture.stderr,
        on_output=on_output,
    )  # type: ignore[arg-type]
    try:
        with control.on_abort(lambda: _abort_socket(ws)):
            result = streaming.run_stream(ws, target)
    finally:
        if stdin_fd is not None:
            with contextlib.suppress(OSError):
                os.close(stdin_fd)
    if control.aborted:
        return
    if result.status is not None and result.status.exit_code is not None:
        capture.exit_code = result.status.exit_code
    elif result.status is not None:
        capture.error = StartFailedError(result.status.message or "the command could not run")
    else:
        capture.error = UnreachableError(f"connection to {client.server} lost while the command ran")


def _abort_socket(ws: WebSocketLike) -> None:
    ws.abort()


def _feed(data: bytes) -> int:
    """A pipe's read end that yields `data` then EOF (a thread writes, so any size fits)."""
    read_end, write_end = os.pipe()

    def write_all() -> None:
        with contextlib.suppress(OSError), os.fdopen(write_end, "wb") as out:
            out.write(data)

    threading.Thread(target=write_all, name="kdebug-stdin-feed", daemon=True).start()
    return read_end


def run_fresh(
    client: KubeApi,
    namespace: str,
    pod: dict,
    container: dict,
    capture: Captured,
    control: Control,
    on_output: Callable[[bytes], None] | None = None,
) -> None:
    """Add a container whose main process is the command; wait for its end; output from its log."""
    pod_name = pod["metadata"]["name"]
    name = container["name"]
    add_container(client, namespace, pod_name, container)
    _, state = wait_for_container(client, namespace, pod_name, name, control, until_terminated=True)
    path = paths.pod_path(namespace, pod_name, "log")
    for chunk in client.stream_bytes(path, {"container": name}):
        capture.stdout.write(chunk)
        if on_output is not None:
            on_output(chunk)
    capture.exit_code = state.exit_code if state.exit_code is not None else 0
