"""Turn a TARGET (pod, workload or label selector) into one pod and one target container."""

from __future__ import annotations

from kdebug.errors import NotFoundError, PermissionDeniedError, UsageError
from kdebug.kube.client import KubeClient
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


def pods_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/pods"
    return f"{base}/{name}" if name else base


def resolve_target(
    kube: KubeClient, namespace: str, target: str | None, selector: str | None, container: str | None
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


def _pod_by_name(kube: KubeClient, namespace: str, name: str) -> dict:
    try:
        return kube.get(pods_path(namespace, name))
    except NotFoundError:
        raise not_found_message("pod", namespace, name, _names(kube, pods_path(namespace))) from None


def _pod_by_selector(kube: KubeClient, namespace: str, selector: str) -> dict:
    pods = kube.get(pods_path(namespace), {"labelSelector": selector}).get("items") or []
    if not pods:
        raise NotFoundError(f"no pods match selector {selector} in namespace {namespace}")
    chosen = choose_pod(pods)
    if chosen is None:
        raise NotFoundError(
            f"no Running pod matches selector {selector} in namespace {namespace} "
            f"({len(pods)} pods, none Running)"
        )
    return chosen


def _pod_of_workload(kube: KubeClient, namespace: str, kind: str, name: str) -> dict:
    group, plural, _ = WORKLOADS[kind]
    collection = f"{group}/namespaces/{namespace}/{plural}"
    try:
        workload = kube.get(f"{collection}/{name}")
    except NotFoundError:
        raise not_found_message(kind, namespace, name, _names(kube, collection)) from None
    selector = label_selector_string(workload.get("spec", {}).get("selector") or {})
    pods = kube.get(pods_path(namespace), {"labelSelector": selector or None}).get("items") or []
    replicasets: list[dict] = []
    if kind == "deployment":
        rs_path = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
        replicasets = kube.get(rs_path, {"labelSelector": selector or None}).get("items") or []
    owned = pods_owned_by(pods, workload, kind, replicasets)
    chosen = choose_pod(owned)
    if chosen is None:
        detail = f"{len(owned)} pods, none Running" if owned else "no pods"
        raise NotFoundError(f"{kind}/{name} in namespace {namespace} has no Running pod ({detail})")
    return chosen


def _names(kube: KubeClient, collection: str) -> list[str]:
    """Names in a collection, for 'nearest names'; empty when listing is not allowed."""
    try:
        items = kube.get(collection).get("items") or []
    except (PermissionDeniedError, NotFoundError):
        return []
    return [item["metadata"]["name"] for item in items]


def node_of(kube: KubeClient, pod: dict) -> dict | None:
    """The pod's node, or None when unscheduled or when the user may not read nodes (common)."""
    node_name = pod.get("spec", {}).get("nodeName")
    if not node_name:
        return None
    try:
        return kube.get(f"/api/v1/nodes/{node_name}")
    except (PermissionDeniedError, NotFoundError):
        return None
