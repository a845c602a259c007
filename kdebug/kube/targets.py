"""PURE: parse TARGET strings, choose one pod among candidates, choose the target container.

Everything here works on pod dicts in the API's JSON shape and raises KdebugError subclasses with
one-line messages; nothing does I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from kdebug.errors import NotFoundError, NotSupportedError, UsageError
from kdebug.kube.names import check_object_name, shown
from kdebug.models import TargetRef

# prefix -> singular kind, as kubectl spells the short and long names
KIND_ALIASES: dict[str, str] = {
    "pod": "pod",
    "pods": "pod",
    "po": "pod",
    "deploy": "deployment",
    "deployment": "deployment",
    "deployments": "deployment",
    "sts": "statefulset",
    "statefulset": "statefulset",
    "statefulsets": "statefulset",
    "ds": "daemonset",
    "daemonset": "daemonset",
    "daemonsets": "daemonset",
    "rs": "replicaset",
    "replicaset": "replicaset",
    "replicasets": "replicaset",
    "job": "job",
    "jobs": "job",
}

# singular kind -> Kind, as ownerReferences spell it and kdebug.kube.paths.KINDS knows its path
WORKLOADS: dict[str, str] = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "daemonset": "DaemonSet",
    "replicaset": "ReplicaSet",
    "job": "Job",
}

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


def copy_hint(pod_name: str, namespace: str) -> str:
    """What to do when the pod cannot take an ephemeral container (crash-looping, an earlier debugger)."""
    return (
        f"debug a copy of the pod instead: kdebug attach {pod_name} -n {namespace} --copy"
        " (add --copy-command 'sleep infinity' to keep a crashing app from exiting)"
    )


def parse_target(text: str, option: str = "TARGET") -> TargetRef:
    """`web`, `pod/web`, `deploy/shop`, `sts/db`, ... -> TargetRef(kind, name), the name checked as the API
    server checks it (a usage error naming `option`)."""
    if not text or text.startswith("-"):
        raise UsageError(f"{option} {shown(text)}: expected NAME, pod/NAME or KIND/NAME")
    if "/" not in text:
        return TargetRef("pod", check_object_name(text, "pod", option))
    prefix, _, name = text.partition("/")
    kind = KIND_ALIASES.get(prefix.lower())
    if kind is None:
        known = ", ".join(sorted({"pod", "deploy", "sts", "ds", "rs", "job"}))
        raise UsageError(f"{option} {shown(text)}: unknown target kind {shown(prefix)} (use one of: {known})")
    return TargetRef(kind, check_object_name(name, kind, option, text))


def label_selector_string(selector: dict) -> str:
    """A workload's spec.selector (matchLabels + matchExpressions) as a labelSelector query string."""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def owner_uids(obj: dict, kind: str | None = None) -> set[str]:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return {ref.get("uid", "") for ref in refs if kind is None or ref.get("kind") == kind}


def pods_owned_by(
    pods: list[dict], workload: dict, workload_kind: str, replicasets: list[dict]
) -> list[dict]:
    """Keep the pods whose ownerReferences lead to `workload` (deployment -> replicaset -> pod)."""
    uid = workload["metadata"].get("uid", "")
    if workload_kind == "deployment":
        owners = {rs["metadata"].get("uid", "") for rs in replicasets if uid in owner_uids(rs, "Deployment")}
    else:
        owners = {uid}
    return [pod for pod in pods if owner_uids(pod) & owners]


def is_running(pod: dict) -> bool:
    return pod.get("status", {}).get("phase") == "Running"


def is_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_terminating(pod: dict) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def choose_pod(pods: list[dict]) -> dict | None:
    """One Running pod, preferring Ready, then the newest; None when no pod runs."""
    running = [pod for pod in pods if is_running(pod) and not is_terminating(pod)]
    if not running:
        return None

    def preference(pod: dict) -> tuple[bool, str, str]:
        meta = pod["metadata"]
        # RFC 3339 timestamps in UTC sort as strings
        return (is_ready(pod), meta.get("creationTimestamp", ""), meta.get("name", ""))

    return max(running, key=preference)


def nearest_names(name: str, names: Iterable[str], limit: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(names), n=limit, cutoff=0.5)


def not_found_message(what: str, namespace: str, name: str, existing: Iterable[str]) -> NotFoundError:
    """`pod "wbe" not found in namespace demo` plus the nearest names, as one line."""
    message = f'{what} "{name}" not found in namespace {namespace}'
    nearest = nearest_names(name, existing)
    hint = f"did you mean: {', '.join(nearest)}?" if nearest else None
    return NotFoundError(message + (f" (nearest: {', '.join(nearest)})" if nearest else ""), hint=hint)


def container_names(pod: dict) -> list[str]:
    return [c["name"] for c in pod.get("spec", {}).get("containers") or []]


def choose_container(pod: dict, requested: str | None) -> str:
    """-c, else the default-container annotation, else the only container; init containers never."""
    names = container_names(pod)
    pod_name = pod["metadata"]["name"]
    if requested:
        if requested in names:
            return requested
        init_names = [c["name"] for c in pod.get("spec", {}).get("initContainers") or []]
        if requested in init_names:
            raise UsageError(f'container "{requested}" in pod {pod_name} is an init container, not a target')
        raise NotFoundError(
            f'container "{requested}" not found in pod {pod_name} (containers: {", ".join(names)})'
        )
    annotated = (pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if annotated and annotated in names:
        return annotated
    if len(names) == 1:
        return names[0]
    raise UsageError(
        f"pod {pod_name} has {len(names)} containers ({', '.join(names)}): choose one with -c",
        hint=f"kdebug attach {pod_name} -c {names[0]}" if names else None,
    )


def container_status(pod: dict, name: str, field: str = "containerStatuses") -> dict:
    for status in pod.get("status", {}).get(field) or []:
        if status.get("name") == name:
            return status
    return {}


def waiting_reasons(pod: dict) -> list[str]:
    reasons = []
    for status in pod.get("status", {}).get("containerStatuses") or []:
        reason = (status.get("state", {}).get("waiting") or {}).get("reason")
        if reason:
            reasons.append(reason)
    return reasons


def refuse_undebuggable(pod: dict, container: str, node: dict | None = None) -> None:
    """Raise NotSupportedError when the pod cannot get a working ephemeral container."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    name = meta["name"]
    crash_hint = copy_hint(name, meta.get("namespace") or "default")
    if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
        raise NotSupportedError(
            f"pod {name} is a static (mirror) pod: the kubelet never starts ephemeral containers in it",
            hint="debug the node, or run a copy of the pod",
        )
    node_os = ((node or {}).get("metadata", {}).get("labels") or {}).get("kubernetes.io/os")
    if (spec.get("os") or {}).get("name") == "windows" or node_os == "windows":
        raise NotSupportedError(f"pod {name} runs on Windows, which has no process namespace sharing")
    phase = status.get("phase", "Unknown")
    if phase != "Running":
        reason = status.get("reason") or ", ".join(waiting_reasons(pod))
        hint = crash_hint if "CrashLoopBackOff" in reason else None
        raise NotSupportedError(
            f"pod {name} is {phase}" + (f" ({reason})" if reason else "") + ", not Running", hint=hint
        )
    state = container_status(pod, container).get("state") or {}
    if "running" not in state:
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        reason = waiting.get("reason") or terminated.get("reason") or "not started"
        hint = crash_hint if reason == "CrashLoopBackOff" else None
        raise NotSupportedError(f'container "{container}" in pod {name} is not running ({reason})', hint=hint)
