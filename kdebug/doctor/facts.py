"""Gathers the facts dict that kdebug.doctor.checks's checks read (see its docstring for the keys).

Read-only: the only writes are SelfSubjectReview and SelfSubjectAccessReviews, which change nothing.
Every gathering step tolerates failure: what could not be gathered becomes a failing or warning
check, never a traceback. When the kubeconfig or the server fails, later steps are skipped (they
would only repeat the same failure, slowly).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kdebug.debug.copy_pods import list_copies
from kdebug.errors import KdebugError
from kdebug.images.catalog import load_catalog
from kdebug.images.inspection import classify_container_image, make_image_chooser, pod_platform
from kdebug.kube import client as kube
from kdebug.kube import paths, resolve
from kdebug.security.decision import read_namespace_labels
from kdebug.security.permissions import required_permissions
from kdebug.security.preflight import send_access_reviews

if TYPE_CHECKING:
    from kdebug.kube.api import KubeApi

# (kubeconfig, context, namespace) -> a connected client, as kdebug.kube.client.connect
Connect = Callable[[str | None, str | None, str | None], "KubeApi"]

SELF_SUBJECT_REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


@dataclass(frozen=True)
class DoctorRequest:
    target: str | None = None
    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    container: str | None = None
    operation: str = "attach"


def error_text(exc: BaseException) -> str:
    """One line, from kdebug's own message or the exception's type (never a traceback)."""
    if isinstance(exc, KdebugError):
        return exc.message
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def gather_kubeconfig(request: DoctorRequest, connect: Connect) -> tuple[KubeApi | None, dict]:
    """(client or None, the kubeconfig fact)."""
    path = request.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        client = connect(request.kubeconfig, request.context, request.namespace)
    except Exception as exc:
        return None, {"path": path, "context": request.context, "error": error_text(exc)}
    context = client.cluster.context or request.context
    return client, {"path": None if context == "in-cluster" else path, "context": context, "error": None}


def gather_server(client: KubeApi) -> dict:
    try:
        version = client.get(paths.VERSION)
    except Exception as exc:
        return {"reachable": False, "version": None, "error": error_text(exc)}
    return {"reachable": True, "version": version, "error": None}


def gather_identity(client: KubeApi) -> dict | None:
    """The caller's user and groups from a SelfSubjectReview (1.28+); None when not answered."""
    try:
        answer = client.request("POST", paths.SELF_SUBJECT_REVIEW, body=dict(SELF_SUBJECT_REVIEW))
    except Exception:
        return None
    info = (answer.get("status") or {}).get("userInfo") or {}
    if not info.get("username"):
        return None
    return {"username": info["username"], "groups": list(info.get("groups") or [])}


def gather_access_answers(client: KubeApi, operation: str, namespace: str) -> list[dict | None]:
    try:
        return send_access_reviews(client, required_permissions(operation, namespace))
    except Exception:
        return [None] * len(required_permissions(operation, namespace))


def gather_namespace_labels(client: KubeApi, namespace: str) -> dict | None:
    try:
        return read_namespace_labels(client, namespace)
    except Exception:
        return None


def gather_target(client: KubeApi, namespace: str, request: DoctorRequest, config: dict) -> dict:
    """The target fact, or {"error": ...} when the target cannot be found."""
    try:
        resolved = resolve.resolve_target(client, namespace, request.target, None, request.container)
    except Exception as exc:
        return {"error": error_text(exc)}
    pod, container = resolved.pod, resolved.container
    target: dict = {"pod": pod, "container": container, "node_labels": node_labels(client, pod)}
    target["image_user"] = target_image_user(pod, container, config)
    target.update(debug_image(pod, container, config))
    return target


def node_labels(client: KubeApi, pod: dict) -> dict | None:
    try:
        node = resolve.node_of(client, pod)
    except Exception:
        return None
    return ((node or {}).get("metadata") or {}).get("labels") if node else None


def target_image_user(pod: dict, container: str, config: dict) -> str | None:
    """The target image's user as classification reads it from the name (no registry request)."""
    spec = next(
        (c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container), {}
    )
    status = next(
        (s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s.get("name") == container),
        {},
    )
    try:
        catalog = load_catalog(config)
        classification, _ = classify_container_image(
            spec.get("image", ""), status.get("imageID") or None, catalog, None, pod_platform(pod, catalog)
        )
    except Exception:
        return None
    if classification.uid is not None:
        gid = classification.gid
        return f"{classification.uid}:{gid}" if gid is not None else str(classification.uid)
    return classification.user


def debug_image(pod: dict, container: str, config: dict) -> dict:
    try:
        choice = make_image_chooser(config, registry_client=False)(pod, container)
    except Exception as exc:
        return {"debug_image": None, "debug_image_reason": error_text(exc)}
    return {"debug_image": choice.image, "debug_image_reason": choice.reason}


def gather_copies(client: KubeApi, namespace: str) -> list[dict] | None:
    try:
        return list_copies(client, namespace)
    except Exception:
        return None


def gather_facts(
    request: DoctorRequest,
    config: dict,
    now: datetime,
    connect: Connect | None = None,
) -> dict:
    """Everything doctor checks, as plain data; `connect` defaults to kdebug.kube.client.connect."""
    client, kubeconfig_fact = gather_kubeconfig(request, connect or kube.connect)
    facts: dict = {"kubeconfig": kubeconfig_fact, "operation": request.operation}
    if client is None:
        return facts
    namespace = request.namespace or client.namespace or "default"
    facts["namespace"] = namespace
    facts["server"] = gather_server(client)
    if not facts["server"]["reachable"]:
        return facts
    facts["identity"] = gather_identity(client)
    facts["access_answers"] = gather_access_answers(client, request.operation, namespace)
    facts["namespace_labels"] = gather_namespace_labels(client, namespace)
    if request.target:
        target = gather_target(client, namespace, request, config)
        if "error" in target:
            facts["target_error"] = target["error"]
        else:
            facts["target"] = target
    copies = gather_copies(client, namespace)
    if copies is not None:
        facts["copies"] = copies
        facts["now"] = now
    return facts
