"""PURE: `meta.k8s.io/v1` Table output, what `kubectl get` asks for with `Accept: ...;as=Table`.

Rows carry PartialObjectMetadata (or the whole object with includeObject=Object), cells are the printed
columns, ages use the API server's human duration format.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Obj = dict[str, Any]


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(obj: Obj, now: dt.datetime) -> str:
    stamp = obj.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return human_duration((now - created).total_seconds())


def _column(
    name: str, kind: str = "string", priority: int = 0, fmt: str = "", desc: str = ""
) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": desc, "priority": priority}


_NAME = _column("Name", fmt="name", desc="Name must be unique within a namespace.")
_AGE = _column(
    "Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created."
)

POD_COLUMNS = [
    _NAME,
    _column("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", desc="The aggregate status of the containers in this pod."),
    _column(
        "Restarts",
        desc="The number of times the containers in this pod have been restarted and when "
        "the last container in this pod has restarted.",
    ),
    _AGE,
    _column("IP", priority=1, desc="IP address allocated to the pod. Routable at least within the cluster."),
    _column("Node", priority=1, desc="Name of the node where the pod is scheduled."),
    _column("Nominated Node", priority=1, desc="Nominated node name, if any."),
    _column("Readiness Gates", priority=1, desc="Pod readiness gates, if any."),
]
NAMESPACE_COLUMNS = [_NAME, _column("Status", desc="The status of the namespace"), _AGE]
DEPLOYMENT_COLUMNS = [
    _NAME,
    _column("Ready", desc="Number of the pod with ready state"),
    _column(
        "Up-to-date",
        "integer",
        desc="Total number of non-terminated pods targeted by this deployment "
        "that have the desired template spec.",
    ),
    _column(
        "Available",
        "integer",
        desc="Total number of available pods (ready for at least minReadySeconds) "
        "targeted by this deployment.",
    ),
    _AGE,
]
REPLICASET_COLUMNS = [
    _NAME,
    _column("Desired", "integer", desc="Replicas is the number of desired replicas."),
    _column("Current", "integer", desc="Replicas is the most recently observed number of replicas."),
    _column("Ready", "integer", desc="The number of ready replicas for this replica set."),
    _AGE,
]
STATEFULSET_COLUMNS = [_NAME, _column("Ready", desc="Number of the pod with ready state"), _AGE]
NODE_COLUMNS = [
    _NAME,
    _column("Status", desc="The status of the node"),
    _column("Roles", desc="The roles of the node"),
    _AGE,
    _column("Version", desc="Kubelet Version reported by the node."),
]
DEFAULT_COLUMNS = [_NAME, _AGE]


def pod_status_reason(pod: Obj) -> str:
    """The STATUS column: phase, overridden by container waiting/terminated reasons, then Terminating."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_cells(pod: Obj, now: dt.datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(spec.get('containers') or [])}",
        pod_status_reason(pod),
        str(restarts),
        _age(pod, now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _workload_cells(resource: str, obj: Obj, now: dt.datetime) -> list[Any] | None:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name, age = obj["metadata"]["name"], _age(obj, now)
    desired, ready = int(spec.get("replicas", 0)), int(status.get("readyReplicas", 0))
    if resource == "deployments":
        updated, available = int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0))
        return [name, f"{ready}/{desired}", updated, available, age]
    if resource == "replicasets":
        return [name, desired, int(status.get("replicas", 0)), ready, age]
    if resource == "statefulsets":
        return [name, f"{ready}/{desired}", age]
    if resource == "nodes":
        info = status.get("nodeInfo") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        state = "Ready" if conditions.get("Ready") == "True" else "NotReady"
        return [name, state, "<none>", age, info.get("kubeletVersion", "")]
    return None


def _cells(resource: str, obj: Obj, now: dt.datetime) -> list[Any]:
    if resource == "pods":
        return _pod_cells(obj, now)
    workload = _workload_cells(resource, obj, now)
    if workload is not None:
        return workload
    if resource == "namespaces":
        return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", "Active"), _age(obj, now)]
    return [obj["metadata"]["name"], _age(obj, now)]


def _columns(resource: str) -> list[dict[str, Any]]:
    columns = {
        "pods": POD_COLUMNS, "namespaces": NAMESPACE_COLUMNS, "deployments": DEPLOYMENT_COLUMNS,
        "replicasets": REPLICASET_COLUMNS, "statefulsets": STATEFULSET_COLUMNS, "nodes": NODE_COLUMNS,
    }  # fmt: skip
    return columns.get(resource, DEFAULT_COLUMNS)


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def build_table(
    resource: str,
    objects: list[Obj],
    now: dt.datetime,
    resource_version: str,
    include_object: str = "PartialObjectMetadata",
) -> dict[str, Any]:
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": _cells(resource, obj, now)}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": _columns(resource),
        "rows": rows,
    }
