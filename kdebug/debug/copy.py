"""Debugging a copy of the pod (`attach --copy`): the prelude that finds the target in the copy, the
hint that points to `--copy`, and the end of a copy (kept or deleted). The requests are in copy_pods."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from kdebug.debug import copy_pods
from kdebug.errors import KdebugError
from kdebug.kube.api import KubeApi

# In a copy (shareProcessNamespace) PID 1 is the pause process (pause, catatonit), not the target. The
# debug command runs behind this prelude, which finds the target: the lowest PID above 1 whose root is
# not the debugger's own (a copy never restarts the target, and its processes have other roots). The
# containers of a pod may start in any order, and a container being started shows as `runc init`, so
# while PID 1 is a pause process and the target is not (yet) seen it looks again, for up to 5 s. It
# exports KDEBUG_TARGET_PID and KDEBUG_TARGET_ROOT=/proc/PID/root (a PID set by the runtime wins).
COPY_TARGET_PRELUDE = r"""if [ -z "$KDEBUG_TARGET_PID" ]; then
  i=0
  case "$(tr '\000' ' ' </proc/1/cmdline 2>/dev/null)" in *pause*|*catatonit*) i=-25;; esac
  while :; do
    busy=
    for p in /proc/[0-9]*; do
      n=${p#/proc/}
      [ "$n" -gt 1 ] || continue
      [ "$p/root/" -ef / ] && continue
      case "$(tr '\000' ' ' <"$p/cmdline" 2>/dev/null)" in
        "") continue;;
        *"runc init"*|*"crun "*) busy=1; continue;;
      esac
      [ -z "$KDEBUG_TARGET_PID" ] || [ "$n" -lt "$KDEBUG_TARGET_PID" ] && KDEBUG_TARGET_PID=$n
    done
    { [ -n "$KDEBUG_TARGET_PID" ] && [ -z "$busy" ]; } || [ "$i" -ge 0 ] && break
    KDEBUG_TARGET_PID=; i=$((i+1)); sleep 0.2
  done
fi
[ -n "$KDEBUG_TARGET_PID" ] && export KDEBUG_TARGET_PID KDEBUG_TARGET_ROOT=/proc/$KDEBUG_TARGET_PID/root
exec "$@"
"""
COPY_PRELUDE_NAME = "kdebug-copy-target"
COPY_TARGET_ROOT = "$KDEBUG_TARGET_ROOT (/proc/<target pid>/root: in a copy PID 1 is the pause process)"


def in_copy_command(shell: str, command: list[str]) -> list[str]:
    """The debug command behind the prelude that finds the target's PID in a copy."""
    return [shell, "-c", COPY_TARGET_PRELUDE, COPY_PRELUDE_NAME, *command]


def without_target_root(container: dict) -> dict:
    """In a copy the target's root is found at run time (the prelude), not at /proc/1/root."""
    env = [e for e in container.get("env") or [] if e.get("name") != "KDEBUG_TARGET_ROOT"]
    return {**container, "env": env}


def end_copy(
    client: KubeApi,
    namespace: str,
    copy_name: str,
    keep: bool,
    progress: Callable[..., None],
) -> None:
    """Keep the copy, or delete it (a failed delete leaves it, reported as kept)."""
    if keep:
        progress("copy_kept", copy=copy_name, namespace=namespace)
        return
    with contextlib.suppress(KdebugError):  # the session's own outcome matters more than cleanup
        copy_pods.delete_copy(client, namespace, copy_name)
        progress("copy_deleted", copy=copy_name)
        return
    progress("copy_kept", copy=copy_name, namespace=namespace)
