"""Waiting for a debug container (ephemeral, or the debugger of a copy) to start or to end, on the one
watch loop (kdebug.kube.watch)."""

from __future__ import annotations

from collections.abc import Callable

from kdebug.debug import spec
from kdebug.errors import KdebugError, StartFailedError
from kdebug.kube import paths
from kdebug.kube.api import KubeApi
from kdebug.kube.watch import watch_object


def outcome(pod: dict, name: str, until_terminated: bool) -> spec.StartupState | None:
    """PURE: the state to stop at (terminated or failed; running unless waiting for the end), else None."""
    state = spec.container_state(pod, name)
    if state.phase in ("terminated", "failed"):
        return state
    if state.phase == "running" and not until_terminated:
        return state
    return None


def start_failure(pod: dict, name: str, state: spec.StartupState) -> StartFailedError:
    detail = f"{state.reason}: {state.message}" if state.message else state.reason
    return StartFailedError(
        f"debug container {name} failed to start: {detail}",
        hint=spec.start_failure_hint(pod, name, state.reason),
    )


def wait_for_container(
    client: KubeApi,
    namespace: str,
    pod_name: str,
    name: str,
    remaining: Callable[[], float],
    *,
    until_terminated: bool,
    timeout_error: Callable[[spec.StartupState], KdebugError],
    start: dict | None = None,
    on_pod: Callable[[dict, spec.StartupState], None] | None = None,
) -> tuple[dict, spec.StartupState]:
    """The pod and the container's state once it runs (or ends, or failed); `timeout_error(last)` when
    `remaining()` runs out. `start`: the newest copy of the pod held, to watch from without a list."""
    last = spec.StartupState("waiting", "Pending")

    def seen(pod: dict) -> None:
        nonlocal last
        last = spec.container_state(pod, name)
        if on_pod is not None:
            on_pod(pod, last)

    def settled(pod: dict) -> tuple[dict, spec.StartupState] | None:
        state = outcome(pod, name, until_terminated)
        return (pod, state) if state is not None else None

    found = watch_object(
        client,
        paths.pods_path(namespace),
        pod_name,
        settled,
        remaining,
        deleted=lambda: StartFailedError(f"pod {pod_name} was deleted while kdebug waited"),
        start=start,
        on_object=seen,
    )
    if found is None:
        raise timeout_error(last)
    return found
