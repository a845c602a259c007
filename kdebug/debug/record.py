"""The session's audit record: what its start event says, collected as the session learns it."""

from __future__ import annotations

from typing import Any, Protocol

from kdebug.errors import KdebugError, capped
from kdebug.kube import kubeconfig as kc
from kdebug.kube import paths
from kdebug.kube.api import KubeApi
from kdebug.models import ResolvedTarget


class Recorder(Protocol):
    def started(self, fields: dict) -> None: ...
    def update(self, fields: dict) -> None: ...
    def output(self, data: bytes) -> None: ...
    def input(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def finished(self, status: str, exit_code: int | None, error: str | None) -> None: ...


class NullRecorder:
    """The default recorder: records nothing."""

    def started(self, fields: dict) -> None:
        pass

    def update(self, fields: dict) -> None:
        pass

    def output(self, data: bytes) -> None:
        pass

    def input(self, data: bytes) -> None:
        pass

    def resize(self, cols: int, rows: int) -> None:
        pass

    def finished(self, status: str, exit_code: int | None, error: str | None) -> None:
        pass


class SessionRecord:
    """Fields noted before the start event go into it; after it, each note goes out as an update."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        self.fields: dict[str, Any] = {}
        self.started = False

    def note(self, **fields: Any) -> None:
        fields = {k: v for k, v in fields.items() if v is not None}
        self.fields.update(fields)
        if self.started and fields:
            self.recorder.update(fields)

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.recorder.started(dict(self.fields))

    def finish(self, status: str, exit_code: int | None, error: str | None) -> None:
        self.start()  # a session that failed early still leaves a whole record
        self.recorder.finished(status, exit_code, None if error is None else capped(error))


def target_fields(resolved: ResolvedTarget) -> dict[str, Any]:
    """Record fields about the target pod and container."""
    pod = resolved.pod
    metadata, pod_spec = pod.get("metadata") or {}, pod.get("spec") or {}
    container = next((c for c in pod_spec.get("containers") or [] if c.get("name") == resolved.container), {})
    status = next(
        (
            s
            for s in (pod.get("status") or {}).get("containerStatuses") or []
            if s.get("name") == resolved.container
        ),
        {},
    )
    return {
        "namespace": resolved.namespace,
        "pod": resolved.pod_name,
        "pod_uid": metadata.get("uid"),
        "node": pod_spec.get("nodeName"),
        "container": resolved.container,
        "target_image": container.get("image"),
        "target_image_digest": status.get("imageID") or None,
    }


def identity_fields(client: KubeApi, kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    """Who the cluster says we are (SelfSubjectReview), else the kubeconfig's user name, marked so."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = client.request("POST", paths.SELF_SUBJECT_REVIEW, body=body)
        info = (answer.get("status") or {}).get("userInfo") or {}
    except KdebugError:
        info = {}
    if info.get("username"):
        return {
            "kube_user": info["username"],
            "kube_groups": list(info.get("groups") or []),
            "kube_user_source": "selfsubjectreview",
        }
    user = kubeconfig_user(kubeconfig, context)
    return {"kube_user": user, "kube_user_source": "kubeconfig" if user else None}


def kubeconfig_user(kubeconfig: str | None, context: str | None) -> str | None:
    """The user name the kubeconfig's (current) context names; None when it cannot be read."""
    try:
        merged = kc.load_merged(kc.kubeconfig_paths(kubeconfig))
        _name, ctx = kc.chosen_context(merged, context)
    except KdebugError:  # the connection already reported any problem with the kubeconfig
        return None
    user = ctx.get("user")
    return str(user) if user else None
