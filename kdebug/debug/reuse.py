"""PURE: taking over a running kdebug shell instead of adding another ephemeral container (they can
never be removed, so an interactive session reuses one with the same image and target).

A shell is someone's live terminal: keystrokes are shared and `exit` ends it for everyone attached.
kdebug cannot see from the API whether a terminal is attached to a shell (Kubernetes keeps no record of
open attach streams), so the rule is by owner: a running shell is taken over without asking only when
its KDEBUG_USER is the caller's own Kubernetes user (the caller's earlier session, still open or left
behind); anyone else's shell, or one without an owner (added by an older kdebug), only with --join,
which the new session's record names (`joined`: that shell's session id).
"""

from __future__ import annotations

from dataclasses import dataclass

from kdebug.debug import spec
from kdebug.debug.request import SessionPlan
from kdebug.errors import NotFoundError, UsageError


@dataclass(frozen=True)
class Reuse:
    container: str
    state: spec.StartupState
    owner: str | None  # the shell's KDEBUG_USER
    session_id: str | None  # the session that added it (its KDEBUG_SESSION_ID)
    joined: bool  # another user's (or an unowned) shell, taken over because of --join


def reusable_shell(
    pod: dict, image: str, target: str, plan: SessionPlan, user: str | None = None, join: bool = False
) -> Reuse | None:
    """The running kdebug shell to take over: the caller's own first, another's only with `join`;
    None means add a new one. `join` with no running shell at all is a NotFoundError."""
    if not plan.reuse and join:  # --no-reuse, COMMAND and --copy are refused with --join before this
        raise UsageError("--join takes over an interactive shell: run it on a terminal")
    if not plan.reuse:
        return None
    candidates = spec.reusable_containers(pod, image, target)
    own = [c for c in candidates if user and spec.env_value(c, spec.OWNER_ENV) == user]
    if own:
        return _reuse(pod, own[0], joined=False)
    if join and candidates:
        return _reuse(pod, candidates[0], joined=True)
    if join:
        raise NotFoundError(
            f"--join: no running kdebug shell with image {image} for container {target} to join",
            hint="leave out --join to add a debug container of your own",
        )
    return None


def _reuse(pod: dict, container: dict, joined: bool) -> Reuse:
    name = container["name"]
    return Reuse(
        container=name,
        state=spec.container_state(pod, name),
        owner=spec.env_value(container, spec.OWNER_ENV),
        session_id=spec.env_value(container, spec.SESSION_ENV),
        joined=joined,
    )
