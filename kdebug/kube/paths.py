"""PURE: every Kubernetes API path kdebug requests, built in one place with each segment percent-encoded.

A name that came from a user, a runbook or a server answer can hold `/`, `?` or `#`; quoted, it stays
one path segment and can never reach another object, subresource or query.
"""

from __future__ import annotations

from urllib.parse import quote

VERSION = "/version"
CORE = "/api/v1"
APPS = "/apis/apps/v1"
BATCH = "/apis/batch/v1"

SELF_SUBJECT_REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SELF_SUBJECT_ACCESS_REVIEW = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SELF_SUBJECT_RULES_REVIEW = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"

# kind -> (group-version prefix, plural) of the namespaced kinds kdebug reads
KINDS: dict[str, tuple[str, str]] = {
    "Pod": (CORE, "pods"),
    "Service": (CORE, "services"),
    "Secret": (CORE, "secrets"),
    "ReplicationController": (CORE, "replicationcontrollers"),
    "Deployment": (APPS, "deployments"),
    "ReplicaSet": (APPS, "replicasets"),
    "StatefulSet": (APPS, "statefulsets"),
    "DaemonSet": (APPS, "daemonsets"),
    "Job": (BATCH, "jobs"),
}


def segment(value: str) -> str:
    """One path segment: everything but unreserved characters percent-encoded (`/` included)."""
    return quote(value, safe="")


def namespace_path(namespace: str) -> str:
    return f"{CORE}/namespaces/{segment(namespace)}"


def node_path(name: str) -> str:
    return f"{CORE}/nodes/{segment(name)}"


def collection_path(kind: str, namespace: str | None) -> str:
    """The list path of `kind` in `namespace`, or across all namespaces when it is None."""
    prefix, plural = KINDS[kind]
    if namespace is None:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{segment(namespace)}/{plural}"


def object_path(kind: str, namespace: str, name: str) -> str:
    return f"{collection_path(kind, namespace)}/{segment(name)}"


def pods_path(namespace: str | None) -> str:
    return collection_path("Pod", namespace)


def pod_path(namespace: str, name: str, subresource: str | None = None) -> str:
    """A pod, or one of its subresources (`ephemeralcontainers`, `attach`, `exec`, `log`)."""
    path = object_path("Pod", namespace, name)
    return f"{path}/{subresource}" if subresource else path
