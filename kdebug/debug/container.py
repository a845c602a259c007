"""The one way to build a debug container: the spec (kdebug.debug.spec) put through the security
decision (kdebug.security.decision), for `attach`, `run` and `inspect --spec` alike.

`decide_security` raises PermissionDeniedError when the namespace's Pod Security would refuse the
profile (unless forced): this runs before any mutating request, so a refused profile changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdebug.debug import spec
from kdebug.kube.api import KubeApi
from kdebug.models import ImageChoice
from kdebug.security import profiles
from kdebug.security.decision import SecurityDecision, apply_security, decide_security


@dataclass(frozen=True)
class BuiltContainer:
    container: dict
    decision: SecurityDecision


def build_debug_container(
    client: KubeApi,
    pod: dict,
    target: str,
    choice: ImageChoice,
    *,
    name: str,
    command: list[str],
    session_id: str,
    stdin: bool,
    tty: bool,
    stdin_once: bool = False,
    idle_timeout_s: int = spec.DEFAULT_IDLE_TIMEOUT_S,
    profile: str = profiles.AUTO,
    force: bool = False,
    namespace_labels: dict | None = None,
    owner: str | None = None,
) -> BuiltContainer:
    """The debug container for `target` in `pod` with the decided profile and user applied."""
    container = spec.build_ephemeral_container(
        name=name,
        image=choice.image,
        command=command,
        target=target,
        session_id=session_id,
        stdin=stdin,
        tty=tty,
        stdin_once=stdin_once,
        idle_timeout_s=idle_timeout_s,
        run_as_user=choice.run_as_user,
        run_as_group=choice.run_as_group,
        owner=owner,
    )
    decision = decide_security(
        client,
        pod,
        target,
        profile,
        force,
        choice,
        debug_container=container,
        namespace_labels=namespace_labels,
    )
    return BuiltContainer(apply_security(container, decision), decision)
