"""Turn a TARGET (pod, workload or label selector) into one pod and one target container."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kdebug.errors import NotFoundError, PermissionDeniedError, UsageError
from kdebug.kube import paths
from kdebug.kube.targets import (
    WORKLOADS,
    choose_container,
    choose_pod,
    label_selector_string,
    not_found_message,
    parse_target,
    pods_owned_by,
)
from kdebug.models import ResolvedTarget

if TYPE_CHECKING:
    from kdebug.kube.api import KubeApi


def pods_path(namespace: str, name: str = "") -> str:
    """Transitional: kdebug.debug and kdebug.automation still import this; new code uses kube.paths."""
    return paths.pod_path(namespace, name) if name else paths.pods_path(namespace)


def resolve_target(
    kube: KubeApi, namespace: str, target: str | None, selector: str | None, container: str | None
) -> ResolvedTarget:
    """Fetch the pod the user means and choose its container; NotFoundError names what was searched."""
    if selector and target:
        raise UsageError("give either TARGET or -l SELECTOR, not both")
    if selector:
        pod, via = _pod_by_selector(kube, namespace, selector), f"selector {selector}"
    elif target:
        ref = parse_target(target)
        if ref.kind == "pod":
            pod, via = _pod_by_name(kube, namespace, ref.name), ""
        else:
            pod, via = _pod_of_workload(kube, namespace, ref.kind, ref.name), f"{ref.kind}/{ref.name}"
    else:
        raise UsageError("missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)")
    return ResolvedTarget(namespace=namespace, pod=pod, container=choose_container(pod, container), via=via)


def _pod_by_name(kube: KubeApi, namespace: str, name: str) -> dict:
    try:
        return kube.get(paths.pod_path(namespace, name))
    except NotFoundError:
        raise not_found_message("pod", namespace, name, _names(kube, paths.pods_path(namespace))) from None


def _pod_by_selector(kube: KubeApi, namespace: str, selector: str) -> dict:
    pods = kube.get(paths.pods_path(namespace), {"labelSelector": selector}).get("items") or []
    if not pods:
        raise NotFoundError(f"no pods match selector {selector} in namespace {namespace}")
    chosen = choose_pod(pods)
    if chosen is None:
        raise NotFoundError(
            f"no Running pod matches selector {selector} in namespace {namespace} "
            f"({len(pods)} pods, none Running)"
        )
    return chosen


def _pod_of_workload(kube: KubeApi, namespace: str, kind: str, name: str) -> dict:
    api_kind = WORKLOADS[kind]
    try:
        workload = kube.get(paths.object_path(api_kind, namespace, name))
    except NotFoundError:
        existing = _names(kube, paths.collection_path(api_kind, namespace))
        raise not_found_message(kind, namespace, name, existing) from None
    selector = label_selector_string(workload.get("spec", {}).get("selector") or {})
    pods = kube.get(paths.pods_path(namespace), {"labelSelector": selector or None}).get("items") or []
    replicasets: list[dict] = []
    if kind == "deployment":
        rs_path = paths.collection_path("ReplicaSet", namespace)
        replicasets = kube.get(rs_path, {"labelSelector": selector or None}).get("items") or []
    owned = pods_owned_by(pods, workload, kind, replicasets)
    chosen = choose_pod(owned)
    if chosen is None:
        detail = f"{len(owned)} pods, none Running" if owned else "no pods"
        raise NotFoundError(f"{kind}/{name} in namespace {namespace} has no Running pod ({detail})")
    return chosen


def _names(kube: KubeApi, collection: str) -> list[str]:
    """Names in a collection, for 'nearest names'; empty when listing is not allowed."""
    try:
        items = kube.get(collection).get("items") or []
    except (PermissionDeniedError, NotFoundError):
        return []
    return [item["metadata"]["name"] for item in items]


def node_of(kube: KubeApi, pod: dict) -> dict | None:
    """The pod's node, or None when unscheduled or when the user may not read nodes (common)."""
    node_name = pod.get("spec", {}).get("nodeName")
    if not node_name:
        return None
    try:
        return kube.get(paths.node_path(node_name))
    except (PermissionDeniedError, NotFoundError):
        return None
