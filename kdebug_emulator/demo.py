"""PURE: the demo cluster's objects (namespace `demo`: pods web and api, deployment shop with its
ReplicaSet and pods), linked by labels and ownerReferences as a real cluster shows them.

The random parts (pod-template-hash, pod suffixes) come from an injected `suffix(length)` function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEMO_NAMESPACE = "demo"
WEB_IMAGE = "registry.kdebug.test/demo/web:1.0"
API_IMAGE = "gcr.io/distroless/base-debian12:nonroot"
SHOP_IMAGE = "gcr.io/distroless/static-debian12:nonroot"
# The images the demo's pods run: the runtime's image table must know them.
DEMO_IMAGES = (WEB_IMAGE, API_IMAGE, SHOP_IMAGE)

# The alphabet Kubernetes uses for generated names and pod-template-hash (no vowels, no look-alikes).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]


def _pod(
    name: str,
    image: str,
    *,
    labels: dict[str, str],
    security_context: dict[str, Any] | None = None,
    owner: dict[str, Any] | None = None,
) -> Obj:
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": DEMO_NAMESPACE, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    if security_context:
        pod["spec"]["securityContext"] = security_context
    if owner:
        pod["metadata"]["ownerReferences"] = [owner]
    return pod


def _owner(kind: str, api_version: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


NONROOT = {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True}


def shop_template(pod_hash: str | None = None) -> Obj:
    labels = {"app": "shop"}
    if pod_hash:
        labels["pod-template-hash"] = pod_hash
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": SHOP_IMAGE}], "securityContext": dict(NONROOT)},
    }


def shop_deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": DEMO_NAMESPACE, "labels": {"app": "shop"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}}, "template": shop_template()},
    }


def shop_replicaset(pod_hash: str, deployment_uid: str) -> Obj:
    labels = {"app": "shop", "pod-template-hash": pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"shop-{pod_hash}",
            "namespace": DEMO_NAMESPACE,
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3",
            },
            "ownerReferences": [_owner("Deployment", "apps/v1", "shop", deployment_uid)],
        },
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": shop_template(pod_hash)},
    }


def shop_pod(rs_name: str, pod_hash: str, rs_uid: str, suffix: str) -> Obj:
    pod = _pod(
        f"{rs_name}-{suffix}",
        SHOP_IMAGE,
        labels={"app": "shop", "pod-template-hash": pod_hash},
        security_context=dict(NONROOT),
        owner=_owner("ReplicaSet", "apps/v1", rs_name, rs_uid),
    )
    pod["metadata"]["generateName"] = f"{rs_name}-"
    return pod


def standalone_pods() -> list[Obj]:
    web = _pod("web", WEB_IMAGE, labels={"app": "web"})
    api = _pod("api", API_IMAGE, labels={"app": "api"}, security_context=dict(NONROOT))
    return [web, api]


def demo_namespace() -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}


def random_suffix(length: int, choose: Callable[[str], str]) -> str:
    return "".join(choose(SAFE_ALPHABET) for _ in range(length))


def rollout_status(replicas: int) -> Obj:
    """What a settled Deployment/ReplicaSet reports once all replicas run."""
    return {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "fullyLabeledReplicas": replicas,
    }
