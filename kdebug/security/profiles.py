"""PURE: kubectl's debug profiles (KEP-1441) as small mutators on an ephemeral container dict, and
the `auto` choice: the least privilege that reads the target's /proc/1/root and that the namespace's
Pod Security enforce level admits. For a non-root target that is `restricted` as the target's uid and
gid (every level admits it); for a root target, root with SYS_PTRACE (`general`) where the level
allows it, else baseline or restricted.

Each profile is a list of one-job steps, with kubectl's meaning for an ephemeral container:
general adds SYS_PTRACE; baseline clears the security context; restricted runs as non-root with
every capability dropped, no privilege escalation and the runtime's default seccomp profile;
netadmin adds NET_ADMIN and NET_RAW; sysadmin is privileged. kdebug's addition: run as the target's
uid AND gid when the target is non-root, because /proc/1/root of a non-root process is readable
by the same uid and gid, while capabilities added to a non-root container are not effective.

Admission is predicted with kdebug.security.podsecurity on the WHOLE pod with the candidate added, because
Pod Security re-checks every earlier ephemeral container on each ephemeralcontainers update.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from kdebug.errors import UsageError
from kdebug.security import podsecurity
from kdebug.security.users import (
    EffectiveUser,
    debugger_can_read_target,
    effective_user,
    runs_as_non_root,
)

AUTO = "auto"
GENERAL = "general"
BASELINE = "baseline"
RESTRICTED = "restricted"
NETADMIN = "netadmin"
SYSADMIN = "sysadmin"
PROFILES: tuple[str, ...] = (GENERAL, BASELINE, RESTRICTED, NETADMIN, SYSADMIN)
PROFILE_CHOICES: tuple[str, ...] = (AUTO, *PROFILES)

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
# A non-root identity for a debugger that must not be root (restricted) and has no better choice:
# the `nonroot` user of distroless and Chainguard images.
FALLBACK_NON_ROOT = EffectiveUser(65532, 65532)
# Stands in for the real debug container when only its security settings matter.
CANDIDATE_NAME = "kdebug-candidate"

Mutator = Callable[[dict], None]


# --- one-job steps (each mutates the container copy it is given) ---


def _security_context(container: dict) -> dict:
    return container.setdefault("securityContext", {})


def _add_capability(container: dict, capability: str) -> None:
    added = _security_context(container).setdefault("capabilities", {}).setdefault("add", [])
    if capability not in added:
        added.append(capability)


def clear_security_context(container: dict) -> None:
    container.pop("securityContext", None)


def allow_process_tracing(container: dict) -> None:
    _add_capability(container, "SYS_PTRACE")


def allow_network_administration(container: dict) -> None:
    _add_capability(container, "NET_ADMIN")
    _add_capability(container, "NET_RAW")


def set_privileged(container: dict) -> None:
    _security_context(container)["privileged"] = True


def disallow_root(container: dict) -> None:
    _security_context(container)["runAsNonRoot"] = True


def drop_capabilities(container: dict) -> None:
    _security_context(container)["capabilities"] = {"drop": ["ALL"]}


def disallow_privilege_escalation(container: dict) -> None:
    _security_context(container)["allowPrivilegeEscalation"] = False


def set_runtime_default_seccomp(container: dict) -> None:
    _security_context(container)["seccompProfile"] = {"type": "RuntimeDefault"}


PROFILE_STEPS: dict[str, tuple[Mutator, ...]] = {
    GENERAL: (allow_process_tracing,),
    BASELINE: (clear_security_context,),
    RESTRICTED: (
        clear_security_context,
        disallow_root,
        drop_capabilities,
        disallow_privilege_escalation,
        set_runtime_default_seccomp,
    ),
    NETADMIN: (allow_network_administration,),
    SYSADMIN: (set_privileged,),
}


# What each profile that raises privileges adds (beyond anything `auto` needs for a non-root target):
# asked for by a file (a runbook), these need an explicit flag (kdebug.automation.runbook.escalations).
PRIVILEGES: dict[str, str] = {
    GENERAL: "adds SYS_PTRACE",
    NETADMIN: "adds NET_ADMIN and NET_RAW",
    SYSADMIN: "privileged",
}


def raises_privileges(profile: str) -> bool:
    """Whether the profile makes the container privileged or adds a capability."""
    return profile in PRIVILEGES


def validate_profile(profile: str) -> str:
    """The profile name, or a UsageError naming the valid ones."""
    if profile not in PROFILE_CHOICES:
        raise UsageError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILE_CHOICES)}")
    return profile


def apply_profile(
    container: dict, profile: str, run_as_user: int | None = None, run_as_group: int | None = None
) -> dict:
    """A copy of the container with the profile's steps applied, then the user and group set.

    The user comes last because baseline and restricted start by clearing the security context.
    """
    if profile not in PROFILE_STEPS:
        raise UsageError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    result = copy.deepcopy(container)
    for step in PROFILE_STEPS[profile]:
        step(result)
    if run_as_user is not None:
        _security_context(result)["runAsUser"] = run_as_user
    if run_as_group is not None:
        _security_context(result)["runAsGroup"] = run_as_group
    return result


# --- admission prediction ---


def pod_with_ephemeral_container(pod: dict, container: dict) -> dict:
    """A copy of the pod with the container appended to spec.ephemeralContainers (as the patch does)."""
    result = copy.deepcopy(pod)
    spec = result.setdefault("spec", {})
    spec["ephemeralContainers"] = [*(spec.get("ephemeralContainers") or []), copy.deepcopy(container)]
    return result


def enforce_policy(namespace_labels: dict | None) -> tuple[str, str]:
    """The namespace's enforce (level, version), as kdebug.security.podsecurity reads the labels."""
    level, version = podsecurity.policy_from_labels(namespace_labels or {})["enforce"]
    return level, version


def predict_violations(
    pod: dict, ephemeral_container: dict, level: str, version: str = "latest"
) -> list[str]:
    """What Pod Security admission at (level, version) would say about the pod with the container added."""
    return podsecurity.check_pod(pod_with_ephemeral_container(pod, ephemeral_container), level, version)


def check_explicit_profile(pod: dict, ephemeral_container: dict, namespace_labels: dict | None) -> list[str]:
    """Violations of the namespace's enforce level for the pod plus this container; empty = admitted."""
    level, version = enforce_policy(namespace_labels)
    return predict_violations(pod, ephemeral_container, level, version)


# --- the auto choice ---


@dataclass(frozen=True)
class ProfileDecision:
    """The profile kdebug uses, the user it runs the debugger as, and why, in one line.

    `violations_if_forced`: what Pod Security would still report for this choice. Non-empty means
    the namespace rejects even this profile (the pod itself or an earlier debugger violates its
    level): `--force` sends it anyway and fails, `--copy` debugs a copy instead.
    """

    profile: str
    run_as_user: int | None
    run_as_group: int | None
    reason: str
    violations_if_forced: list[str] = field(default_factory=list)
    level: str = "privileged"
    proc_root_readable: bool | None = None


def pod_forces_non_root(pod: dict) -> bool:
    """Whether the pod's securityContext makes every container (the debugger too) run as non-root."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    run_as = pod_sc.get("runAsUser")
    return bool(pod_sc.get("runAsNonRoot")) or (run_as is not None and run_as != 0)


def _target_ids(target: EffectiveUser) -> str:
    return f"the target's {target}"


def _as_target(target: EffectiveUser, why: str = "") -> tuple[str, EffectiveUser | None, str]:
    """The least privilege that reads a non-root target's /proc/1/root, admitted by every level:
    the target's uid and gid, every capability dropped, no privilege escalation (restricted)."""
    return (
        RESTRICTED,
        target,
        f"restricted{why}: runs as {_target_ids(target)} with every capability dropped, which reads "
        f"/proc/1/root without capabilities",
    )


def _decide_privileged(pod: dict, target: EffectiveUser) -> tuple[str, EffectiveUser | None, str]:
    if runs_as_non_root(target):
        return _as_target(target)
    return GENERAL, None, "general: root with SYS_PTRACE reads /proc/1/root whatever the target's user"


def _decide_baseline(target: EffectiveUser) -> tuple[str, EffectiveUser | None, str]:
    non_root = runs_as_non_root(target)
    if non_root:
        return _as_target(target)
    if non_root is False:
        return (
            BASELINE,
            None,
            "baseline (SYS_PTRACE is not allowed): a root debugger reads a root target's /proc/1/root",
        )
    return (
        BASELINE,
        None,
        "baseline (SYS_PTRACE is not allowed): the target's user is unknown, /proc/1/root may be unreadable",
    )


def _decide_restricted(target: EffectiveUser) -> tuple[str, EffectiveUser | None, str]:
    non_root = runs_as_non_root(target)
    if non_root:
        return _as_target(target)
    if non_root is False:
        return (
            RESTRICTED,
            FALLBACK_NON_ROOT,
            f"restricted requires a non-root user, so the debugger runs as {FALLBACK_NON_ROOT}: /proc/1/root "
            f"of this root target will NOT be readable (use --copy in a less strict namespace)",
        )
    return (
        RESTRICTED,
        FALLBACK_NON_ROOT,
        f"restricted requires a non-root user, so the debugger runs as {FALLBACK_NON_ROOT}: the target's "
        f"user is unknown, /proc/1/root is readable only if it also runs as {FALLBACK_NON_ROOT}",
    )


def _decide_for_level(pod: dict, target: EffectiveUser, level: str) -> tuple[str, EffectiveUser | None, str]:
    if level == RESTRICTED:
        decided = _decide_restricted(target)
    elif level == BASELINE:
        decided = _decide_baseline(target)
    else:
        decided = _decide_privileged(pod, target)
    profile, run_as, why = decided
    if run_as is None and pod_requires_non_root_without_user(pod):
        # a root debug image would not start ("image will run as root"): give it a non-root user
        return (
            profile,
            FALLBACK_NON_ROOT,
            f"{why}; the pod requires non-root, so it runs as {FALLBACK_NON_ROOT}",
        )
    return decided


def pod_requires_non_root_without_user(pod: dict) -> bool:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    return bool(pod_sc.get("runAsNonRoot")) and pod_sc.get("runAsUser") is None


def candidate_container(
    profile: str, run_as: EffectiveUser | None, debug_container: dict | None = None
) -> dict:
    """The debug container (or a stand-in with only a name and image) with the profile applied."""
    base = debug_container if debug_container is not None else {"name": CANDIDATE_NAME, "image": "debug"}
    uid = run_as.uid if run_as is not None else None
    gid = run_as.gid if run_as is not None else None
    return apply_profile(base, profile, run_as_user=uid, run_as_group=gid)


def choose_profile_for_level(
    pod: dict,
    container_name: str,
    level: str,
    image_user: str | None,
    *,
    debug_container: dict | None = None,
    debug_image_user: str | None = "",
) -> ProfileDecision:
    """The auto decision for a known enforce level, without predicting admission.

    `image_user` is the target image's config user (None: unknown); `debug_image_user` the debug
    image's ("" = root, the common case for BusyBox-based debug images).
    """
    target = effective_user(pod, container_name, image_user)
    profile, run_as, why = _decide_for_level(pod, target, level)
    candidate = candidate_container(profile, run_as, debug_container)
    return ProfileDecision(
        profile=profile,
        run_as_user=run_as.uid if run_as is not None else None,
        run_as_group=run_as.gid if run_as is not None else None,
        reason=f"{why} (namespace enforces {level})",
        level=level,
        proc_root_readable=debugger_can_read_target(
            pod, container_name, image_user, candidate, debug_image_user
        ),
    )


def choose_auto_profile(
    pod: dict,
    container_name: str,
    namespace_labels: dict | None,
    image_user: str | None,
    *,
    debug_container: dict | None = None,
    debug_image_user: str | None = "",
) -> ProfileDecision:
    """The most capable profile the namespace's enforce level admits, with admission predicted."""
    level, version = enforce_policy(namespace_labels)
    decision = choose_profile_for_level(
        pod,
        container_name,
        level,
        image_user,
        debug_container=debug_container,
        debug_image_user=debug_image_user,
    )
    run_as = (
        EffectiveUser(decision.run_as_user, decision.run_as_group)
        if decision.run_as_user is not None
        else None
    )
    candidate = candidate_container(decision.profile, run_as, debug_container)
    violations = predict_violations(pod, candidate, level, version)
    reason = decision.reason
    if violations:
        reason += "; Pod Security would still reject the pod, use --copy"
    return ProfileDecision(
        profile=decision.profile,
        run_as_user=decision.run_as_user,
        run_as_group=decision.run_as_group,
        reason=reason,
        violations_if_forced=violations,
        level=level,
        proc_root_readable=decision.proc_root_readable,
    )


def explicit_profile_user(
    pod: dict, container_name: str, profile: str, image_user: str | None
) -> EffectiveUser | None:
    """The user an explicitly chosen profile runs as: kdebug's extra over kubectl.

    baseline and restricted run as a non-root target's uid:gid (restricted as 65532:65532 when the
    target is root or unknown, so a root debug image can start); the capability profiles stay root,
    unless the pod forces non-root on every container, then they also take the target's ids.
    """
    target = effective_user(pod, container_name, image_user)
    non_root = runs_as_non_root(target)
    if profile == RESTRICTED:
        return target if non_root else FALLBACK_NON_ROOT
    if profile == BASELINE or pod_forces_non_root(pod):
        return target if non_root else None
    return None
