"""PURE: a copy of a pod to debug when the pod cannot take an ephemeral container.

The copy shares one process namespace, carries the debug container as a regular container, keeps
out of the original's Services and controllers (their selector labels are dropped), and records the
session id and its creation time so `kdebug doctor` can list leftovers. It is kdebug's own pod: the
only kind of pod kdebug ever deletes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

COPY_OF_LABEL = "kdebug.dev/copy-of"
SESSION_ANNOTATION = "kdebug.dev/session-id"
CREATED_AT_ANNOTATION = "kdebug.dev/created-at"
NAME_INFIX = "-kdebug-"
MAX_NAME_LENGTH = 63  # a DNS label: the pod's hostname comes from its name

# Labels controllers put on their pods: a copy carrying them would be adopted or counted.
CONTROLLER_LABELS: tuple[str, ...] = (
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/job-completion-index",
)
# Annotations that belong to the original object, not to a new pod.
ORIGINAL_ONLY_ANNOTATIONS_PREFIXES: tuple[str, ...] = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubernetes.io/config.",
    "kubernetes.io/psp",
)
# Metadata a new pod may carry; everything else (uid, resourceVersion, ownerReferences, ...) goes.
KEPT_METADATA: tuple[str, ...] = ("namespace", "labels", "annotations")
# Fields only valid on ephemeral containers.
EPHEMERAL_ONLY_FIELDS: tuple[str, ...] = ("targetContainerName",)
PROBES: tuple[str, ...] = ("livenessProbe", "readinessProbe", "startupProbe")


def copy_pod_name(pod_name: str, suffix: str) -> str:
    """`<pod>-kdebug-<suffix>`, the pod part shortened so the name fits a DNS label."""
    tail = f"{NAME_INFIX}{suffix}"
    head = pod_name[: MAX_NAME_LENGTH - len(tail)].rstrip("-.")
    return head + tail


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, as the API server writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def copy_labels(labels: dict | None, pod_name: str, labels_to_drop: Iterable[str]) -> dict:
    dropped = set(CONTROLLER_LABELS) | set(labels_to_drop)
    result = {k: v for k, v in (labels or {}).items() if k not in dropped}
    result[COPY_OF_LABEL] = pod_name
    return result


def selector_matches(selector: dict, labels: dict) -> bool:
    """Whether a Service selector or a workload's matchLabels selects these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def labels_breaking_selectors(labels: dict | None, selectors: Iterable[dict]) -> list[str]:
    """Few labels whose removal keeps the copy out of every selector that matches the pod.

    Greedy: repeatedly drop the label shared by most still-matching selectors, so `app` goes only
    when no other label separates the copy from a Service or controller.
    """
    remaining = dict(labels or {})
    dropped: list[str] = []
    while matching := [s for s in selectors if selector_matches(s, remaining)]:
        counts: dict[str, int] = {}
        for selector in matching:
            for key in selector:
                counts[key] = counts.get(key, 0) + 1
        key = max(counts, key=lambda k: counts[k])
        dropped.append(key)
        remaining.pop(key)
    return dropped


def copy_annotations(annotations: dict | None, session_id: str, created_at: datetime) -> dict:
    result = {
        k: v for k, v in (annotations or {}).items() if not k.startswith(ORIGINAL_ONLY_ANNOTATIONS_PREFIXES)
    }
    result[SESSION_ANNOTATION] = session_id
    result[CREATED_AT_ANNOTATION] = format_timestamp(created_at)
    return result


def as_regular_container(debug_container: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in debug_container.items() if k not in EPHEMERAL_ONLY_FIELDS}


def replace_command(container: dict, command: Sequence[str]) -> None:
    """Run `command` instead of the image's entrypoint; its probes would kill it, so they go too."""
    container["command"] = list(command)
    container.pop("args", None)
    for probe in PROBES:
        container.pop(probe, None)


def build_copy_pod(
    pod: dict,
    container_name: str,
    debug_container: dict,
    suffix: str,
    session_id: str,
    created_at: datetime,
    copy_command: list[str] | None = None,
    labels_to_drop: Iterable[str] = (),
    same_node: bool = False,
) -> dict:
    """The pod to create: see the module docstring. `labels_to_drop`: the owner's selector labels."""
    source_meta = pod.get("metadata") or {}
    pod_name = source_meta.get("name", "")
    metadata: dict = {"name": copy_pod_name(pod_name, suffix)}
    metadata.update({k: copy.deepcopy(source_meta[k]) for k in KEPT_METADATA if k in source_meta})
    metadata["labels"] = copy_labels(source_meta.get("labels"), pod_name, labels_to_drop)
    metadata["annotations"] = copy_annotations(source_meta.get("annotations"), session_id, created_at)

    spec = copy.deepcopy(pod.get("spec") or {})
    spec.pop("ephemeralContainers", None)
    if not same_node:
        spec.pop("nodeName", None)
    spec["shareProcessNamespace"] = True
    spec["restartPolicy"] = "Never"
    if copy_command is not None:
        for container in spec.get("containers") or []:
            if container.get("name") == container_name:
                replace_command(container, copy_command)
    spec["containers"] = [*(spec.get("containers") or []), as_regular_container(debug_container)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def is_kdebug_copy(pod: dict) -> bool:
    metadata = pod.get("metadata") or {}
    return COPY_OF_LABEL in (metadata.get("labels") or {}) and SESSION_ANNOTATION in (
        metadata.get("annotations") or {}
    )


def copy_created_at(pod: dict) -> datetime | None:
    """The creation time kdebug recorded, else the server's creationTimestamp."""
    metadata = pod.get("metadata") or {}
    for text in (
        (metadata.get("annotations") or {}).get(CREATED_AT_ANNOTATION),
        metadata.get("creationTimestamp"),
    ):
        if text and (moment := parse_timestamp(text)) is not None:
            return moment
    return None


def leftover_copies(pods: Iterable[dict], now: datetime, older_than: timedelta) -> list[dict]:
    """kdebug copies created more than `older_than` before `now`, oldest first."""
    cutoff = now - older_than
    aged = []
    for pod in pods:
        if not is_kdebug_copy(pod):
            continue
        created = copy_created_at(pod)
        if created is not None and created <= cutoff:
            aged.append((created, pod))
    return [pod for _, pod in sorted(aged, key=lambda item: item[0])]


# In a copy (shareProcessNamespace) PID 1 is the pause process (pause, catatonit), not the target. The
# debug command runs behind this prelude, which finds the target: the lowest PID above 1 whose root is
# not the debugger's own (a copy never restarts the target, and its processes have other roots). The
# containers of a pod may start in any order, and a container being started shows as `runc init`, so
# while the target is not (yet) seen it looks again, for up to 5 s; then it says so on stderr and exits
# 65 (ExitCode.NOT_FOUND) without running the command. Processes come and go while it looks: `cmdline_of`
# opens a cmdline with stderr already redirected (redirections apply left to right; the open error of
# an exited one would otherwise reach the user, in a logs-only session on stdout), and the chosen PID
# must still be there after the look. Where PID 1 is no pause process this is not a pod's shared PID
# namespace (the emulator runs containers as host processes): it does not guess. It exports
# KDEBUG_TARGET_PID and KDEBUG_TARGET_ROOT=/proc/PID/root (a PID set by the runtime wins).
COPY_TARGET_PRELUDE = r"""cmdline_of() { tr '\000' ' ' 2>/dev/null <"/proc/$1/cmdline"; }
if [ -z "$KDEBUG_TARGET_PID" ]; then
  case "$(cmdline_of 1)" in *pause*|*catatonit*)
    i=0
    while :; do
      busy=
      for p in /proc/[0-9]*; do
        n=${p##*/}
        [ "$n" -gt 1 ] 2>/dev/null || continue
        [ "$p/root/" -ef / ] && continue
        case "$(cmdline_of "$n")" in
          "") continue;;
          *"runc init"*|*"crun "*) busy=1; continue;;
        esac
        [ -z "$KDEBUG_TARGET_PID" ] || [ "$n" -lt "$KDEBUG_TARGET_PID" ] && KDEBUG_TARGET_PID=$n
      done
      [ -n "$KDEBUG_TARGET_PID" ] && [ -z "$(cmdline_of "$KDEBUG_TARGET_PID")" ] && KDEBUG_TARGET_PID=
      [ -n "$KDEBUG_TARGET_PID" ] && { [ -z "$busy" ] || [ "$i" -ge 25 ]; } && break
      if [ "$i" -ge 25 ]; then
        echo "kdebug: no target process in this copy (it exited, or did not start within 5 s):" \
          "add --copy-command 'sleep infinity' to keep a crashing app running" >&2
        exit 65
      fi
      KDEBUG_TARGET_PID=; i=$((i+1)); sleep 0.2
    done;;
  esac
fi
[ -n "$KDEBUG_TARGET_PID" ] && export KDEBUG_TARGET_PID KDEBUG_TARGET_ROOT=/proc/$KDEBUG_TARGET_PID/root
exec "$@"
"""
COPY_PRELUDE_NAME = "kdebug-copy-target"
COPY_TARGET_ROOT = "$KDEBUG_TARGET_ROOT (/proc/<target pid>/root: in a copy PID 1 is the pause process)"


def in_copy_command(shell: str, command: list[str]) -> list[str]:
    """The debug command behind the prelude that finds the target's PID in a copy."""
    return [shell, "-c", COPY_TARGET_PRELUDE, COPY_PRELUDE_NAME, *command]
