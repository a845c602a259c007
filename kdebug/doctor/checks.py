"""PURE: the checks of `kdebug doctor [TARGET]`, each over a facts dict an adapter gathers.

Facts (every key optional; a missing key means "not gathered" and its check is left out):

    kubeconfig:        {"path": str, "context": str | None, "error": str | None}
    server:            {"reachable": bool, "version": {"gitVersion": "v1.32.4", "major": "1", "minor": "32"},
                        "error": str | None}
    identity:          {"username": str, "groups": [str]} or None (SelfSubjectReview not answered)
    namespace:         str
    namespace_labels:  dict, or None when the namespace could not be read
    operation:         the operation whose permissions are checked ("attach" unless given)
    access_answers:    SelfSubjectAccessReview answers (or None each), in the order of
                       permissions.required_permissions(operation, namespace)
    target_error:      str, when TARGET was given but could not be resolved (a failing check)
    target:            {"pod": dict, "container": str, "image_user": str | None,
                        "node_labels": dict | None, "debug_image": str | None, "debug_image_reason": str}
    copies:            pods labelled kdebug.dev/copy-of in the namespace; with
    now:               datetime (for the age of copies), leftover_after: timedelta (default 1 hour)

Each check returns Check(name, status, message, fix); `overall_exit` turns them into the exit code.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum

from kdebug.debug.copy_spec import leftover_copies
from kdebug.errors import ExitCode
from kdebug.security import podsecurity
from kdebug.security.permissions import (
    missing_message,
    missing_permissions,
    required_permissions,
    unanswered_permissions,
)
from kdebug.security.profiles import choose_profile_for_level, enforce_policy
from kdebug.security.users import effective_user

JSON_VERSION = 1
KDEBUG_CONTAINER_PREFIX = "kdebug-"
KDEBUG_SESSION_ENV = "KDEBUG_SESSION_ID"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_LEFTOVER_AFTER = timedelta(hours=1)
EPHEMERAL_GA_MINOR = 25
EPHEMERAL_BETA_MINOR = 23


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str = ""


def passed(name: str, message: str) -> Check:
    return Check(name, Status.PASS, message)


def warned(name: str, message: str, fix: str = "") -> Check:
    return Check(name, Status.WARN, message, fix)


def failed(name: str, message: str, fix: str) -> Check:
    return Check(name, Status.FAIL, message, fix)


# --- cluster checks ---


def check_kubeconfig(facts: dict) -> Check:
    config = facts.get("kubeconfig") or {}
    if config.get("error"):
        return failed(
            "kubeconfig", f"kubeconfig unusable: {config['error']}", "set KUBECONFIG or --kubeconfig"
        )
    if not config.get("context"):
        return failed(
            "kubeconfig", "no current context", "kubectl config use-context NAME, or --context NAME"
        )
    return passed(
        "kubeconfig", f"context {config['context']} from {config.get('path') or 'in-cluster config'}"
    )


def server_minor_version(version: dict | None) -> tuple[int, int] | None:
    """(major, minor) from a /version answer; tolerates `27+` and reads gitVersion as a fallback."""
    if not version:
        return None
    major, minor = str(version.get("major", "")), str(version.get("minor", ""))
    numbers = re.match(r"(\d+)", major), re.match(r"(\d+)", minor)
    if numbers[0] and numbers[1]:
        return int(numbers[0].group(1)), int(numbers[1].group(1))
    git = re.match(r"v?(\d+)\.(\d+)", str(version.get("gitVersion", "")))
    return (int(git.group(1)), int(git.group(2))) if git else None


def check_server(facts: dict) -> Check:
    server = facts.get("server") or {}
    if not server.get("reachable"):
        return failed(
            "server",
            f"API server unreachable: {server.get('error') or 'no answer'}",
            "check network, VPN and context",
        )
    git_version = (server.get("version") or {}).get("gitVersion", "unknown version")
    return passed("server", f"API server reachable, {git_version}")


def check_ephemeral_containers(facts: dict) -> Check:
    name = "ephemeral-containers"
    version = server_minor_version((facts.get("server") or {}).get("version"))
    if version is None:
        return warned(name, "server version unknown: ephemeral container support not checked")
    major, minor = version
    if (major, minor) >= (1, EPHEMERAL_GA_MINOR):
        return passed(name, f"ephemeral containers are GA in {major}.{minor}")
    if (major, minor) >= (1, EPHEMERAL_BETA_MINOR):
        return warned(
            name,
            f"ephemeral containers are beta in {major}.{minor}: off if the EphemeralContainers gate is off",
            "if attach reports them disabled, use --copy",
        )
    return failed(name, f"{major}.{minor} has no usable ephemeral containers (GA since 1.25)", "use --copy")


def check_identity(facts: dict) -> Check:
    identity = facts.get("identity")
    if not identity or not identity.get("username"):
        return warned("identity", "the server did not say who you are (SelfSubjectReview: 1.28+)")
    groups = ", ".join(identity.get("groups") or []) or "none"
    return passed("identity", f"you are {identity['username']} (groups: {groups})")


def check_permissions(facts: dict) -> Check:
    operation = facts.get("operation", "attach")
    namespace = facts.get("namespace", "default")
    needed = required_permissions(operation, namespace)
    answers = facts.get("access_answers") or [None] * len(needed)
    missing = missing_permissions(needed, answers)
    username = (facts.get("identity") or {}).get("username")
    if missing:
        return failed(
            "permissions",
            missing_message(missing, username),
            "kdebug doctor --rbac prints a Role granting it",
        )
    if len(unanswered_permissions(needed, answers)) == len(needed):
        return warned("permissions", "the server did not answer access reviews: the real calls will decide")
    return passed("permissions", f"allowed to {operation} in namespace {namespace}")


def pod_security_summary(namespace_labels: dict) -> str:
    policy = podsecurity.policy_from_labels(namespace_labels)
    return " ".join(f"{mode}={level}:{version}" for mode, (level, version) in policy.items())


def check_pod_security(facts: dict) -> Check:
    labels = facts.get("namespace_labels")
    namespace = facts.get("namespace", "default")
    if labels is None:
        return warned(
            "pod-security",
            f"namespace {namespace} could not be read: its Pod Security levels are unknown",
            "grant get on this namespace (kdebug doctor --rbac)",
        )
    return passed("pod-security", f"namespace {namespace}: {pod_security_summary(labels)}")


# --- target checks ---


def container_state(pod: dict, container_name: str) -> dict:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container_name:
            return status.get("state") or {}
    return {}


def check_target_found(facts: dict) -> Check:
    """Added for kdebug.doctor.facts: `target_error` is set when TARGET could not be resolved."""
    return failed("target", f"target not found: {facts['target_error']}", "check TARGET, -n and -c")


def check_target_state(target: dict) -> Check:
    name = "target-state"
    pod, container = target["pod"], target["container"]
    pod_name = pod["metadata"]["name"]
    if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
        return failed(name, f"{pod_name} is a static pod: it cannot take ephemeral containers", "use --copy")
    phase = (pod.get("status") or {}).get("phase", "Unknown")
    if phase != "Running":
        return failed(name, f"{pod_name} is {phase}, not Running", "use --copy to debug a copy of it")
    state = container_state(pod, container)
    if "running" in state:
        return passed(name, f"{pod_name} is Running, container {container} is running")
    waiting = (state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason")
    return failed(
        name,
        f"container {container} is not running ({waiting or 'state unknown'}): there is no process to share",
        "use --copy --copy-command 'sleep infinity' to inspect its files",
    )


def pod_without_ephemeral_containers(pod: dict) -> dict:
    result = copy.deepcopy(pod)
    result.setdefault("spec", {})["ephemeralContainers"] = []
    return result


def blocking_ephemeral_containers(pod: dict, level: str, version: str) -> list[str]:
    """Earlier ephemeral containers that add violations at (level, version) to the pod without them."""
    base = pod_without_ephemeral_containers(pod)
    base_violations = set(podsecurity.check_pod(base, level, version))
    blocking = []
    for container in (pod.get("spec") or {}).get("ephemeralContainers") or []:
        alone = copy.deepcopy(base)
        alone["spec"]["ephemeralContainers"] = [container]
        if set(podsecurity.check_pod(alone, level, version)) - base_violations:
            blocking.append(container["name"])
    return blocking


def check_earlier_debuggers(target: dict, namespace_labels: dict | None) -> Check:
    name = "pod-security-admission"
    if namespace_labels is None:
        return warned(name, "namespace unreadable: whether admission takes a debugger is unknown")
    level, version = enforce_policy(namespace_labels)
    pod = target["pod"]
    pod_violations = podsecurity.check_pod(pod_without_ephemeral_containers(pod), level, version)
    if pod_violations:
        return failed(
            name,
            f"the pod itself violates {level}:{version} ({'; '.join(pod_violations)}): "
            f"admission rejects every ephemeral container added to it",
            "use --copy in a namespace that admits it",
        )
    blocking = blocking_ephemeral_containers(pod, level, version)
    if blocking:
        return failed(
            name,
            f"earlier ephemeral container(s) {', '.join(blocking)} violate {level}:{version}; admission "
            f"re-checks all of them on each update and none can be removed: every new debugger is rejected",
            "use --copy",
        )
    return passed(name, f"the pod and its ephemeral containers meet {level}:{version}")


def node_platform(target: dict) -> tuple[str | None, str | None]:
    """(os, arch) from the node's labels, else from the pod's spec.os and nodeSelector."""
    labels = target.get("node_labels") or {}
    pod_spec = target["pod"].get("spec") or {}
    selector = pod_spec.get("nodeSelector") or {}
    os_name = (
        labels.get("kubernetes.io/os")
        or (pod_spec.get("os") or {}).get("name")
        or selector.get("kubernetes.io/os")
    )
    arch = labels.get("kubernetes.io/arch") or selector.get("kubernetes.io/arch")
    return os_name, arch


def check_node_platform(target: dict) -> Check:
    name = "node-platform"
    os_name, arch = node_platform(target)
    if os_name == "windows":
        return failed(
            name, "the pod runs on Windows: no shared process namespace to debug", "use kubectl exec"
        )
    if os_name is None:
        return warned(name, "node OS and architecture unknown (the node could not be read)")
    return passed(name, f"node is {os_name}/{arch or 'unknown arch'}")


def check_target_user(target: dict, namespace_labels: dict | None) -> Check:
    name = "target-user"
    level, _ = enforce_policy(namespace_labels)
    pod, container = target["pod"], target["container"]
    user = effective_user(pod, container, target.get("image_user"))
    decision = choose_profile_for_level(pod, container, level, target.get("image_user"))
    summary = f"target runs as {user}; profile {decision.profile}"
    if decision.proc_root_readable:
        return passed(name, f"{summary}: /proc/1/root will be readable")
    if decision.proc_root_readable is None:
        return warned(
            name, f"{summary}: /proc/1/root may not be readable ({decision.reason})", "set --user UID:GID"
        )
    return warned(name, f"{summary}: /proc/1/root will NOT be readable ({decision.reason})", "use --copy")


def is_kdebug_ephemeral(container: dict) -> bool:
    env_names = {e.get("name") for e in container.get("env") or []}
    return container.get("name", "").startswith(KDEBUG_CONTAINER_PREFIX) or KDEBUG_SESSION_ENV in env_names


def ephemeral_running(pod: dict, container_name: str) -> bool:
    for status in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if status.get("name") == container_name:
            return "running" in (status.get("state") or {})
    return False


def check_kdebug_debuggers(target: dict) -> Check:
    name = "kdebug-debuggers"
    pod = target["pod"]
    ours = [
        c["name"] for c in (pod.get("spec") or {}).get("ephemeralContainers") or [] if is_kdebug_ephemeral(c)
    ]
    running = [n for n in ours if ephemeral_running(pod, n)]
    if running:
        return warned(
            name,
            f"{len(running)} kdebug debugger(s) still running: {', '.join(running)}",
            "kdebug attach reuses a running one; exiting its shell ends it",
        )
    if ours:
        return passed(name, f"{len(ours)} earlier kdebug debugger(s), all exited")
    return passed(name, "no kdebug debuggers in this pod yet")


def check_debug_image(target: dict) -> Check:
    image = target.get("debug_image")
    if not image:
        return failed("debug-image", "no debug image could be chosen for this target", "pass --image IMAGE")
    reason = target.get("debug_image_reason")
    return passed("debug-image", f"{image} ({reason})" if reason else image)


def check_leftover_copies(facts: dict) -> Check:
    now = facts["now"]
    older_than = facts.get("leftover_after", DEFAULT_LEFTOVER_AFTER)
    leftovers = leftover_copies(facts.get("copies") or [], now, older_than)
    if leftovers:
        names = ", ".join(p["metadata"]["name"] for p in leftovers)
        return warned(
            "leftover-copies", f"kdebug copies older than {older_than}: {names}", "kubectl delete pod NAME"
        )
    return passed("leftover-copies", "no leftover kdebug copies")


def run_checks(facts: dict) -> list[Check]:
    """Every check whose facts were gathered, in the checklist's order."""
    checks: list[Check] = []
    if "kubeconfig" in facts:
        checks.append(check_kubeconfig(facts))
    if "server" in facts:
        checks += [check_server(facts), check_ephemeral_containers(facts)]
    if "identity" in facts:
        checks.append(check_identity(facts))
    if "access_answers" in facts:
        checks.append(check_permissions(facts))
    if "namespace_labels" in facts:
        checks.append(check_pod_security(facts))
    if facts.get("target_error"):
        checks.append(check_target_found(facts))
    target = facts.get("target")
    if target:
        labels = facts.get("namespace_labels")
        checks += [
            check_target_state(target),
            check_earlier_debuggers(target, labels),
            check_node_platform(target),
            check_target_user(target, labels),
            check_kdebug_debuggers(target),
            check_debug_image(target),
        ]
    if "copies" in facts and "now" in facts:
        checks.append(check_leftover_copies(facts))
    return checks


def overall_exit(checks: list[Check]) -> int:
    """CHECK_FAILED when any check failed; warnings do not fail doctor."""
    return int(ExitCode.CHECK_FAILED if any(c.status == Status.FAIL for c in checks) else ExitCode.OK)


def checks_json(checks: list[Check]) -> dict:
    """The `-o json` document; `version` changes only when fields change meaning or go away."""
    return {
        "version": JSON_VERSION,
        "ok": overall_exit(checks) == ExitCode.OK,
        "checks": [{**asdict(c), "status": str(c.status)} for c in checks],
    }
