"""PURE: build the ephemeral debug container and the patch that adds it.

Random parts (the name suffix, the session id) come in as arguments so tests compare whole dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

NAME_PREFIX = "kdebug-"
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # like Kubernetes' rand.String: no vowels, no 0/1/3
TARGET_ROOT = "/proc/1/root"
OWNER_ENV = "KDEBUG_USER"  # who added a debug shell (kdebug.debug.reuse matches on it)
SESSION_ENV = "KDEBUG_SESSION_ID"
PATCH_CONTENT_TYPE = "application/strategic-merge-patch+json"
DEFAULT_IDLE_TIMEOUT_S = 3600


IDLE_GUARD_NAME = "kdebug-idle-guard"
# Ends an interactive shell whose terminal got no input for $KDEBUG_IDLE_TIMEOUT seconds: the kernel
# updates a pty's access time on input (what `w` shows as IDLE), so a watchdog compares it with the
# clock and sends SIGHUP to the shell. Needs only tty, stat, date and sleep (all BusyBox applets); without
# them the shell just runs (TMOUT remains as a second line of defence for shells that honour it).
#
# The container shares the target's PID namespace: a process whose parent exits first is re-parented to
# the target's PID 1, which often never reaps (a zombie for the pod's lifetime). So the container's main
# process stays a plain shell that starts the debug shell as a job (`set -m`: its own process group,
# signals untouched, brought to the foreground with `fg`), then stops the watchdog and reaps it (and the
# watchdog its `sleep`) before it exits with the debug shell's status. Without job control (no
# controlling terminal, or a shell built without `fg`) a background job would start with SIGINT ignored
# (Ctrl-C dead in the shell): then the debug shell replaces the wrapper as before. The wrapper ignores
# HUP and INT (a Ctrl-C before `fg` must not end it; the shell and the watchdog, started before, keep
# the defaults) but not TERM: a pod being deleted must not wait its grace period for a debug shell.
# bash prints a job notice (the watchdog's whole command) for a job that ends while it waits in `fg`:
# so the watchdog, once it has hung up the shell, waits to be stopped rather than exiting, and the
# wrapper's stderr goes nowhere once the shell has ended (before, it must stay the terminal, where
# bash's job control looks for it).
IDLE_GUARD_SCRIPT = """\
t=$(tty 2>/dev/null) && command -v stat >/dev/null 2>&1 || exec "$@"
guard() {
  (trap 'kill $p 2>/dev/null; wait $p 2>/dev/null; exit 0' TERM
  while sleep "$KDEBUG_IDLE_CHECK" & p=$!; wait $p; do
    kill -0 "$1" 2>/dev/null || exit 0
    idle=$(( $(date +%s) - $(stat -c %X "$t") ))
    [ "$idle" -ge "$KDEBUG_IDLE_TIMEOUT" ] && kill -HUP "$1" && exec sleep 2147483647
  done) </dev/null >/dev/null 2>&1 &
}
set -m 2>/dev/null
case $- in *m*) command -v fg >/dev/null 2>&1 && jc=1;; esac
[ -n "$jc" ] || { guard $$; exec "$@"; }
"$@" &
shell=$!
guard $shell
watchdog=$!
trap '' HUP INT
fg %1 >/dev/null
rc=$?
exec 2>/dev/null
kill $watchdog 2>/dev/null
wait $watchdog 2>/dev/null
exit $rc
"""


def idle_guarded(shell: list[str]) -> list[str]:
    """The shell started behind the idle watchdog, interpreted by the image's own shell."""
    return [shell[0], "-c", IDLE_GUARD_SCRIPT, IDLE_GUARD_NAME, *shell]


def idle_check_interval(idle_timeout_s: int) -> int:
    """How often the watchdog looks: a quarter of the timeout, between 1 s and 30 s."""
    return max(1, min(30, idle_timeout_s // 4))


def all_container_names(pod: dict) -> set[str]:
    spec = pod.get("spec", {})
    names: set[str] = set()
    for field in ("containers", "initContainers", "ephemeralContainers"):
        names.update(c["name"] for c in spec.get(field) or [])
    return names


def unique_container_name(pod: dict, next_suffix: Callable[[], str], max_tries: int = 100) -> str:
    """`kdebug-` + a suffix, re-rolled until no container of the pod has that name."""
    taken = all_container_names(pod)
    for _ in range(max_tries):
        name = NAME_PREFIX + next_suffix()
        if name not in taken:
            return name
    raise RuntimeError("could not find a free ephemeral container name")  # only with a broken suffix source


def build_ephemeral_container(
    *,
    name: str,
    image: str,
    command: list[str],
    target: str,
    session_id: str,
    stdin: bool,
    tty: bool,
    stdin_once: bool = False,
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S,
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    owner: str | None = None,
) -> dict:
    """The ephemeral container dict, in the API's JSON shape; `owner` (the Kubernetes user who adds it)
    goes into KDEBUG_USER, so a later `attach` takes over only its own user's shell."""
    container: dict = {
        "name": name,
        "image": image,
        "command": list(command),
        "targetContainerName": target,
        "stdin": stdin,
        "tty": tty,
        "terminationMessagePolicy": "File",
        "env": [
            {"name": "KDEBUG_SESSION_ID", "value": session_id},
            {"name": "KDEBUG_TARGET_ROOT", "value": TARGET_ROOT},
            # the idle watchdog (see IDLE_GUARD_SCRIPT) and, for shells that honour it, TMOUT
            {"name": "KDEBUG_IDLE_TIMEOUT", "value": str(int(idle_timeout_s))},
            {"name": "KDEBUG_IDLE_CHECK", "value": str(idle_check_interval(int(idle_timeout_s)))},
            {"name": "TMOUT", "value": str(int(idle_timeout_s))},
        ],
    }
    if owner:
        container["env"].append({"name": OWNER_ENV, "value": owner})
    if stdin and stdin_once:
        container["stdinOnce"] = True
    security = {}
    if run_as_user is not None:
        security["runAsUser"] = run_as_user
    if run_as_group is not None:
        security["runAsGroup"] = run_as_group
    if security:
        container["securityContext"] = security
    return container


def ephemeral_patch(container: dict) -> dict:
    """The strategic-merge patch body for pods/NAME/ephemeralcontainers (merges by name)."""
    return {"spec": {"ephemeralContainers": [container]}}


def ephemeral_status(pod: dict, name: str) -> dict:
    for status in pod.get("status", {}).get("ephemeralContainerStatuses") or []:
        if status.get("name") == name:
            return status
    return {}


def find_reusable_container(pod: dict, image: str, target: str) -> str | None:
    """A running kdebug shell (no command of its own beyond a shell) with the same image and target."""
    return next((c["name"] for c in reusable_containers(pod, image, target)), None)


def reusable_containers(pod: dict, image: str, target: str) -> list[dict]:
    """Every running kdebug shell with the same image and target, oldest first (the specs)."""
    found = []
    for container in pod.get("spec", {}).get("ephemeralContainers") or []:
        name = container.get("name", "")
        if not name.startswith(NAME_PREFIX):
            continue
        if container.get("image") != image or container.get("targetContainerName") != target:
            continue
        if not (container.get("stdin") and container.get("tty")) or container.get("stdinOnce"):
            continue
        if not is_shell_command(container.get("command") or []):
            continue
        if "running" in (ephemeral_status(pod, name).get("state") or {}):
            found.append(container)
    return found


def env_value(container: dict, name: str) -> str | None:
    return next((e.get("value") for e in container.get("env") or [] if e.get("name") == name), None)


def is_shell_command(command: list[str]) -> bool:
    """A bare shell, or a bare shell behind kdebug's idle watchdog (any version of its script)."""
    if len(command) >= 5 and command[1] == "-c" and command[3] == IDLE_GUARD_NAME:
        command = command[4:]
    return len(command) == 1 and command[0].rsplit("/", 1)[-1] in {"sh", "ash", "bash", "zsh"}


# waiting reasons after which the container will not start without a change by the user
FAILURE_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})


@dataclass(frozen=True)
class StartupState:
    """Where an added ephemeral container is: waiting (with a reason), running, terminated or failed."""

    phase: str  # "waiting" | "running" | "terminated" | "failed"
    reason: str = ""
    message: str = ""
    exit_code: int | None = None


def startup_state(pod: dict, name: str) -> StartupState:
    state = ephemeral_status(pod, name).get("state") or {}
    if "running" in state:
        return StartupState("running")
    if "terminated" in state:
        terminated = state["terminated"] or {}
        return StartupState(
            "terminated",
            terminated.get("reason", ""),
            terminated.get("message", ""),
            terminated.get("exitCode"),
        )
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "") or "Pending"
    phase = "failed" if reason in FAILURE_REASONS else "waiting"
    return StartupState(phase, reason, waiting.get("message", ""))


def container_state(pod: dict, name: str) -> StartupState:
    """startup_state for an ephemeral container, or for a regular one (the debugger in a copy)."""
    if ephemeral_status(pod, name):
        return startup_state(pod, name)
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if any(s.get("name") == name for s in statuses):
        return startup_state({"status": {"ephemeralContainerStatuses": statuses}}, name)
    return startup_state(pod, name)


def ephemeral_container(pod: dict, name: str) -> dict:
    for container in pod.get("spec", {}).get("ephemeralContainers") or []:
        if container.get("name") == name:
            return container
    return {}


def start_failure_hint(pod: dict, name: str, reason: str) -> str | None:
    """For pull errors: the image and its pull policy, and what to try."""
    if reason not in PULL_REASONS:
        return None
    container = ephemeral_container(pod, name)
    image = container.get("image", "?")
    policy = container.get("imagePullPolicy") or "IfNotPresent"
    return (
        f"image {image} (imagePullPolicy {policy}) could not be pulled by the node: check the name and "
        "registry access, or choose another with --image"
    )
