"""Pod copies as callable steps: create one, delete it, list them (the wait for the debugger is the
session's own, kdebug.debug.wait).

The copy itself is built by the pure kdebug.debug.copy_spec. This module does the requests, and holds the
one rule that matters most: `delete_copy` deletes a pod only when it carries kdebug's copy label and
session annotation, and only the exact pod it inspected (uid precondition). The target pod is never
touched.
"""

from __future__ import annotations

from datetime import datetime

from kdebug.debug import copy_spec as copies
from kdebug.errors import KdebugError, NotFoundError, UsageError
from kdebug.kube import paths
from kdebug.kube.api import KubeApi

# --- keeping the copy out of Services and controllers ---


def service_selectors(client: KubeApi, namespace: str) -> list[dict]:
    """The selectors of the namespace's Services; empty when they cannot be listed."""
    try:
        services = client.get(paths.collection_path("Service", namespace)).get("items") or []
    except KdebugError:
        return []
    return [(s.get("spec") or {}).get("selector") or {} for s in services]


# the controllers that adopt pods their selector matches
OWNER_KINDS = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"})


def owner_selectors(client: KubeApi, pod: dict) -> list[dict]:
    """matchLabels of the pod's controllers (they would adopt a copy their selector matches)."""
    metadata = pod.get("metadata") or {}
    namespace = metadata.get("namespace") or "default"
    selectors = []
    for owner in metadata.get("ownerReferences") or []:
        kind = owner.get("kind", "")
        if kind not in OWNER_KINDS:
            continue
        try:
            found = client.get(paths.object_path(kind, namespace, owner.get("name", "")))
        except KdebugError:
            continue
        selector = (found.get("spec") or {}).get("selector") or {}
        selectors.append(selector.get("matchLabels", selector) if isinstance(selector, dict) else {})
    return [s for s in selectors if s]


def labels_to_drop(client: KubeApi, pod: dict) -> list[str]:
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
    client: KubeApi,
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
    return client.request("POST", paths.pods_path(namespace), body=body)


def delete_copy(client: KubeApi, namespace: str, name: str) -> bool:
    """Delete a kdebug copy; refuse (UsageError) any pod that is not one. False when already gone."""
    try:
        pod = client.get(paths.pod_path(namespace, name))
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
        client.request("DELETE", paths.pod_path(namespace, name), body=options)
    except NotFoundError:
        return False
    return True


def list_copies(client: KubeApi, namespace: str) -> list[dict]:
    """Every pod in the namespace labelled as a kdebug copy (all namespaces when namespace is "")."""
    path = paths.pods_path(namespace or None)
    pods = client.get(path, {"labelSelector": copies.COPY_OF_LABEL}).get("items") or []
    return [p for p in pods if copies.is_kdebug_copy(p)]
