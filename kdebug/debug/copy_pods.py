"""Pod copies as callable steps: create one, wait for its debugger, delete it, list leftovers.

The copy itself is built by the pure kdebug.debug.copy_spec. This module does the requests, and holds the
one rule that matters most: `delete_copy` deletes a pod only when it carries kdebug's copy label and
session annotation, and only the exact pod it inspected (uid precondition). The target pod is never
touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from kdebug.debug import copy_spec as copies
from kdebug.debug.spec import FAILURE_REASONS
from kdebug.errors import KdebugError, NotFoundError, StartFailedError, UsageError, WaitTimeoutError


def pods_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/pods"
    return f"{base}/{name}" if name else base


# --- keeping the copy out of Services and controllers ---


def service_selectors(client: Any, namespace: str) -> list[dict]:
    """The selectors of the namespace's Services; empty when they cannot be listed."""
    try:
        services = client.get(f"/api/v1/namespaces/{namespace}/services").get("items") or []
    except KdebugError:
        return []
    return [(s.get("spec") or {}).get("selector") or {} for s in services]


OWNER_PATHS: dict[str, str] = {
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets/{name}",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
    "ReplicationController": "/api/v1/namespaces/{ns}/replicationcontrollers/{name}",
}


def owner_selectors(client: Any, pod: dict) -> list[dict]:
    """matchLabels of the pod's controllers (they would adopt a copy their selector matches)."""
    metadata = pod.get("metadata") or {}
    namespace = metadata.get("namespace") or "default"
    selectors = []
    for owner in metadata.get("ownerReferences") or []:
        template = OWNER_PATHS.get(owner.get("kind", ""))
        if template is None:
            continue
        try:
            found = client.get(template.format(ns=namespace, name=owner.get("name", "")))
        except KdebugError:
            continue
        selector = (found.get("spec") or {}).get("selector") or {}
        selectors.append(selector.get("matchLabels", selector) if isinstance(selector, dict) else {})
    return [s for s in selectors if s]


def labels_to_drop(client: Any, pod: dict) -> list[str]:
    """The fewest labels whose removal keeps the copy out of every Service and controller."""
    labels = {
        k: v
        for k, v in ((pod.get("metadata") or {}).get("labels") or {}).items()
        if k not in copies.CONTROLLER_LABELS  # dropped anyway
    }
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    selectors = service_selectors(client, namespace) + owner_selectors(client, pod)
    return copies.labels_breaking_selectors(labels, selectors)


# --- the steps ---


def create_copy(
    client: Any,
    pod: dict,
    container_name: str,
    debug_container: dict,
    *,
    copy_command: list[str] | None = None,
    session_id: str,
    now: datetime,
    suffix: str,
    same_node: bool = False,
) -> dict:
    """POST a copy of `pod` (built by copy_spec.build_copy_pod); returns the pod as the server stored it."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    body = copies.build_copy_pod(
        pod,
        container_name,
        debug_container,
        suffix,
        session_id,
        now,
        copy_command=copy_command,
        labels_to_drop=labels_to_drop(client, pod),
        same_node=same_node,
    )
    return client.request("POST", pods_path(namespace), body=body)


def container_outcome(pod: dict, container_name: str) -> str | None:
    """ "running" when the container runs; raises StartFailedError when it cannot start; else None."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") != container_name:
            continue
        state = status.get("state") or {}
        if "running" in state:
            return "running"
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated")
        if waiting.get("reason") in FAILURE_REASONS:
            raise StartFailedError(
                f"debugger {container_name} in copy {pod['metadata']['name']} cannot start: "
                f"{waiting['reason']}" + (f": {waiting['message']}" if waiting.get("message") else "")
            )
        if terminated is not None:
            raise StartFailedError(
                f"debugger {container_name} in copy {pod['metadata']['name']} ended "
                f"(exit code {terminated.get('exitCode')})"
            )
    return None


def wait_copy_running(
    client: Any,
    namespace: str,
    name: str,
    container_name: str,
    timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    """Watch the copy until its debug container runs; StartFailedError or WaitTimeoutError otherwise.

    The target container may crash-loop in the copy: that is why the copy exists, so it is not waited on.
    """
    deadline = clock() + timeout_s
    listing = client.get(pods_path(namespace), {"fieldSelector": f"metadata.name={name}"})
    items = listing.get("items") or []
    if not items:
        raise NotFoundError(f'pod "{name}" not found in namespace {namespace}')
    pod = items[0]
    version = (listing.get("metadata") or {}).get("resourceVersion")
    while container_outcome(pod, container_name) is None:
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeoutError(
                f"debugger {container_name} in copy {name} did not start within {timeout_s:g}s",
                hint=f"kubectl describe pod {name} -n {namespace}",
            )
        query = {"fieldSelector": f"metadata.name={name}", "resourceVersion": version}
        for event in client.watch(pods_path(namespace), query, remaining):
            obj = event.get("object") or {}
            version = (obj.get("metadata") or {}).get("resourceVersion") or version
            if event.get("type") == "DELETED":
                raise StartFailedError(f"copy {name} was deleted while kdebug waited for it")
            if event.get("type") in ("ADDED", "MODIFIED"):
                pod = obj
                if container_outcome(pod, container_name) is not None:
                    break
    return pod


def delete_copy(client: Any, namespace: str, name: str) -> bool:
    """Delete a kdebug copy; refuse (UsageError) any pod that is not one. False when already gone."""
    try:
        pod = client.get(pods_path(namespace, name))
    except NotFoundError:
        return False
    if not copies.is_kdebug_copy(pod):
        raise UsageError(
            f'pod "{name}" in namespace {namespace} is not a kdebug copy: kdebug deletes only its own copies '
            f"(label {copies.COPY_OF_LABEL} and annotation {copies.SESSION_ANNOTATION})"
        )
    uid = (pod.get("metadata") or {}).get("uid")
    options = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if uid:  # delete exactly the pod inspected, never a same-named pod created since
        options["preconditions"] = {"uid": uid}
    try:
        client.request("DELETE", pods_path(namespace, name), body=options)
    except NotFoundError:
        return False
    return True


def list_copies(client: Any, namespace: str) -> list[dict]:
    """Every pod in the namespace labelled as a kdebug copy (all namespaces when namespace is "")."""
    path = pods_path(namespace) if namespace else "/api/v1/pods"
    pods = client.get(path, {"labelSelector": copies.COPY_OF_LABEL}).get("items") or []
    return [p for p in pods if copies.is_kdebug_copy(p)]


def list_leftover_copies(client: Any, namespace: str, now: datetime, older_than: timedelta) -> list[dict]:
    """kdebug copies created more than `older_than` before `now`, oldest first."""
    return copies.leftover_copies(list_copies(client, namespace), now, older_than)
