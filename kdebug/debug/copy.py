"""Debugging a copy of the pod (`attach --copy`): the debugger without a static target root, and the end
of a copy (kept or deleted). The copy and its target prelude are built by copy_spec, its requests are in
copy_pods."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from kdebug.debug import copy_pods
from kdebug.errors import KdebugError
from kdebug.kube.api import KubeApi


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
