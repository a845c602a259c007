"""The security profile for one debug container, decided before any mutating request.

Reads the namespace's Pod Security labels through the client, then uses kdebug.security.profiles: `auto`
picks the most capable profile the namespace admits (running as the target's uid and gid when that
is what makes /proc/1/root readable); an explicit profile the namespace would reject is refused with
the violations listed, unless forced. `apply_security` puts the decision into the container spec.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from kdebug.errors import KdebugError, PermissionDeniedError
from kdebug.kube import paths
from kdebug.kube.api import KubeApi
from kdebug.models import ImageChoice
from kdebug.security import profiles
from kdebug.security.users import EffectiveUser, debugger_can_read_target, effective_user, runs_as_non_root

USER_FIELDS = ("runAsUser", "runAsGroup")


@dataclass(frozen=True)
class SecurityDecision:
    """The profile and user of the debug container, and why (one line for stderr and `inspect`)."""

    profile: str
    requested: str  # what --profile said: auto or a profile name
    run_as_user: int | None
    run_as_group: int | None
    reason: str
    level: str  # the namespace's enforce level ("unknown" when its labels could not be read)
    version: str = "latest"
    violations: list[str] = field(default_factory=list)  # what Pod Security would still say
    forced: bool = False
    proc_root_readable: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_namespace_labels(client: KubeApi, namespace: str) -> dict | None:
    """The namespace's labels; None when it cannot be read (reading namespaces is often not allowed)."""
    try:
        found = client.get(paths.namespace_path(namespace))
    except KdebugError:  # forbidden, not found, unreachable: the labels are unknown, the patch decides
        return None
    return (found.get("metadata") or {}).get("labels") or {}


def image_user_from_choice(image_choice: ImageChoice | None) -> str | None:
    """The target's user as the image chooser saw it: set only for non-root targets, else unknown."""
    if image_choice is None or image_choice.run_as_user is None:
        return None
    if image_choice.run_as_group is None:
        return str(image_choice.run_as_user)
    return f"{image_choice.run_as_user}:{image_choice.run_as_group}"


def pod_namespace(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("namespace") or "default"


def decide_security(
    client: KubeApi,
    pod: dict,
    container_name: str,
    profile_flag: str = profiles.AUTO,
    force: bool = False,
    image_choice: ImageChoice | None = None,
    *,
    image_user: str | None = None,
    debug_image_user: str | None = "",
    namespace_labels: dict | None = None,
    debug_container: dict | None = None,
) -> SecurityDecision:
    """Decide the profile; raise PermissionDeniedError when the namespace would reject it (unless force).

    `image_user`: the target image's config user ("" root, None unknown); when not given, the
    image chooser's run-as user stands in for it. `namespace_labels` skips reading the namespace.
    `debug_container` (optional) makes violations name the real container instead of a stand-in.
    """
    profiles.validate_profile(profile_flag)
    namespace = pod_namespace(pod)
    labels = namespace_labels if namespace_labels is not None else read_namespace_labels(client, namespace)
    target_user = image_user if image_user is not None else image_user_from_choice(image_choice)
    if profile_flag == profiles.AUTO:
        decision = decide_auto(pod, container_name, labels, target_user, debug_image_user, debug_container)
    else:
        decision = decide_explicit(
            pod, container_name, profile_flag, labels, target_user, debug_image_user, debug_container
        )
    if decision.violations and not force:
        raise rejection_error(decision, namespace)
    if decision.violations:
        return dataclasses.replace(decision, forced=True, reason=decision.reason + "; sent anyway (--force)")
    return decision


def decide_auto(
    pod: dict,
    container_name: str,
    labels: dict | None,
    image_user: str | None,
    debug_image_user: str | None,
    debug_container: dict | None = None,
) -> SecurityDecision:
    if labels is None:
        return decide_without_labels(pod, container_name, image_user, debug_image_user)
    chosen = profiles.choose_auto_profile(
        pod,
        container_name,
        labels,
        image_user,
        debug_container=_without_user(debug_container),
        debug_image_user=debug_image_user,
    )
    _, version = profiles.enforce_policy(labels)
    return SecurityDecision(
        profile=chosen.profile,
        requested=profiles.AUTO,
        run_as_user=chosen.run_as_user,
        run_as_group=chosen.run_as_group,
        reason=chosen.reason,
        level=chosen.level,
        version=version,
        violations=list(chosen.violations_if_forced),
        proc_root_readable=chosen.proc_root_readable,
    )


def decide_without_labels(
    pod: dict, container_name: str, image_user: str | None, debug_image_user: str | None
) -> SecurityDecision:
    """Unreadable namespace: a non-root target is debugged as `restricted` with its ids, which every
    level admits and which reads /proc/1/root; otherwise `general`, and the real patch decides."""
    target = effective_user(pod, container_name, image_user)
    assumed = profiles.RESTRICTED if runs_as_non_root(target) else "privileged"
    chosen = profiles.choose_profile_for_level(
        pod, container_name, assumed, image_user, debug_image_user=debug_image_user
    )
    why = chosen.reason.rsplit(" (namespace enforces", 1)[0]
    return SecurityDecision(
        profile=chosen.profile,
        requested=profiles.AUTO,
        run_as_user=chosen.run_as_user,
        run_as_group=chosen.run_as_group,
        reason=f"{why} (the namespace's Pod Security labels could not be read)",
        level="unknown",
        proc_root_readable=chosen.proc_root_readable,
    )


def decide_explicit(
    pod: dict,
    container_name: str,
    profile: str,
    labels: dict | None,
    image_user: str | None,
    debug_image_user: str | None,
    debug_container: dict | None = None,
) -> SecurityDecision:
    run_as = profiles.explicit_profile_user(pod, container_name, profile, image_user)
    candidate = profiles.candidate_container(profile, run_as, _without_user(debug_container))
    level, version = profiles.enforce_policy(labels) if labels is not None else ("unknown", "latest")
    violations = profiles.check_explicit_profile(pod, candidate, labels) if labels is not None else []
    return SecurityDecision(
        profile=profile,
        requested=profile,
        run_as_user=run_as.uid if run_as is not None else None,
        run_as_group=run_as.gid if run_as is not None else None,
        reason=explicit_reason(profile, run_as, level),
        level=level,
        version=version,
        violations=violations,
        proc_root_readable=debugger_can_read_target(
            pod, container_name, image_user, candidate, debug_image_user
        ),
    )


def explicit_reason(profile: str, run_as: EffectiveUser | None, level: str) -> str:
    user = f" as {run_as}" if run_as is not None else ""
    enforced = f"namespace enforces {level}" if level != "unknown" else "namespace labels unreadable"
    return f"{profile}{user}: chosen with --profile ({enforced})"


def rejection_error(decision: SecurityDecision, namespace: str) -> PermissionDeniedError:
    policy = f'"{decision.level}:{decision.version}"'
    violations = "; ".join(decision.violations)
    if decision.requested == profiles.AUTO:
        return PermissionDeniedError(
            f"namespace {namespace} enforces Pod Security {policy} and would reject any debug container "
            f"in this pod: {violations}",
            hint="debug a copy with --copy, or send it anyway with --force",
        )
    return PermissionDeniedError(
        f"profile {decision.profile} violates namespace {namespace}'s Pod Security {policy}: {violations}",
        hint="use --profile auto (kdebug picks one the namespace admits), or --force to send it anyway",
    )


def _without_user(container: dict | None) -> dict | None:
    return None if container is None else _strip_user(container)


def _strip_user(container: dict) -> dict:
    """A copy without runAsUser/runAsGroup: the decision owns the user (the image choice may have set one)."""
    result = copy.deepcopy(container)
    security_context = result.get("securityContext") or {}
    for key in USER_FIELDS:
        security_context.pop(key, None)
    if security_context:
        result["securityContext"] = security_context
    else:
        result.pop("securityContext", None)
    return result


def apply_security(container: dict, decision: SecurityDecision) -> dict:
    """A copy of the container with the decided profile and user; the decision owns the user, so a
    run-as user set earlier (by the image choice) is replaced."""
    result = _strip_user(container)
    return profiles.apply_profile(
        result, decision.profile, run_as_user=decision.run_as_user, run_as_group=decision.run_as_group
    )
