"""PURE: who a container runs as, and whether a debugger can read the target's /proc/1/root.

The effective user of a container is its securityContext over the pod's securityContext over the
image config's `User`. Reading `/proc/<pid>/root` is a ptrace access check in the kernel: the
debugger's uid AND gid must equal the target's (and its capabilities must cover the target's), or
the debugger must hold CAP_SYS_PTRACE, which is only effective for uid 0 (Kubernetes sets no
ambient capabilities). Seen with real containers: uid 65532 with gid 0 is denied
(/work/shared/k8s-captures/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# Names that distroless and Chainguard/Wolfi images define in /etc/passwd and /etc/group.
KNOWN_USERS: dict[str, int] = {"root": 0, "nonroot": 65532, "nobody": 65534}
# The primary group of the known uids, used when the image gives a uid without a group.
KNOWN_PRIMARY_GROUPS: dict[int, int] = {0: 0, 65532: 65532, 65534: 65534}

# The capabilities containerd, CRI-O and Docker give a container by default.
RUNTIME_DEFAULT_CAPABILITIES: frozenset[str] = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
ALL_CAPABILITIES = "ALL"


@dataclass(frozen=True)
class EffectiveUser:
    """A container's uid and gid; None where it cannot be known (an unknown user name)."""

    uid: int | None
    gid: int | None

    @property
    def known(self) -> bool:
        return self.uid is not None and self.gid is not None

    def __str__(self) -> str:
        return f"{_or_unknown(self.uid)}:{_or_unknown(self.gid)}"


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else str(value)


def resolve_user_name(name: str) -> int | None:
    """A numeric id, or a name distroless/Chainguard images define; None for any other name."""
    name = name.strip()
    if name.isdigit():
        return int(name)
    return KNOWN_USERS.get(name)


def parse_image_user(user: str | None) -> EffectiveUser:
    """The image config's `User` (`"65532"`, `"65532:65532"`, `"nonroot:nonroot"`, `""`).

    `None` means the image config is not known; `""` means the image sets no user: root.
    A uid without a group takes its primary group from /etc/passwd, known here for root, nonroot
    and nobody only.
    """
    if user is None:
        return EffectiveUser(None, None)
    if user.strip() == "":
        return EffectiveUser(0, 0)
    name, _, group = user.partition(":")
    uid = resolve_user_name(name)
    if group:
        return EffectiveUser(uid, resolve_user_name(group))
    return EffectiveUser(uid, KNOWN_PRIMARY_GROUPS.get(uid) if uid is not None else None)


def find_container(pod: dict, container_name: str) -> dict | None:
    """A container, init container or ephemeral container of the pod, by name."""
    spec = pod.get("spec") or {}
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if container.get("name") == container_name:
                return container
    return None


def effective_user_of(container: dict, pod: dict, image_user: str | None) -> EffectiveUser:
    """Container securityContext over pod securityContext over the image's user, per field."""
    container_sc = container.get("securityContext") or {}
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    image = parse_image_user(image_user)
    uid = _first_set(container_sc.get("runAsUser"), pod_sc.get("runAsUser"), image.uid)
    if container_sc.get("runAsGroup") is not None or pod_sc.get("runAsGroup") is not None:
        gid = _first_set(container_sc.get("runAsGroup"), pod_sc.get("runAsGroup"))
    elif uid is not None and uid != image.uid:
        # runAsUser without runAsGroup: the runtime takes the group from the image's /etc/passwd.
        gid = KNOWN_PRIMARY_GROUPS.get(uid)
    else:
        gid = image.gid
    return EffectiveUser(uid, gid)


def _first_set(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def effective_user(pod: dict, container_name: str, image_user: str | None) -> EffectiveUser:
    """The effective uid/gid of a named container of the pod (see effective_user_of)."""
    container = find_container(pod, container_name)
    if container is None:
        return parse_image_user(image_user)
    return effective_user_of(container, pod, image_user)


def runs_as_non_root(user: EffectiveUser) -> bool | None:
    """True for uid != 0, False for root, None when the uid is unknown."""
    if user.uid is None:
        return None
    return user.uid != 0


def permitted_capabilities(security_context: dict | None, uid: int | None) -> frozenset[str]:
    """The capabilities a container's process actually holds.

    Non-root processes hold none (no ambient capabilities in Kubernetes); root holds the runtime's
    defaults minus `drop` plus `add`, or every capability when privileged.
    """
    if uid is None or uid != 0:
        return frozenset()
    sc = security_context or {}
    if sc.get("privileged"):
        return frozenset({ALL_CAPABILITIES})
    caps = sc.get("capabilities") or {}
    dropped = {c.upper() for c in caps.get("drop") or []}
    added = {c.upper() for c in caps.get("add") or []}
    base = set() if ALL_CAPABILITIES in dropped else set(RUNTIME_DEFAULT_CAPABILITIES - dropped)
    return frozenset(base | added)


def _covers(held: frozenset[str], needed: frozenset[str]) -> bool:
    return ALL_CAPABILITIES in held or (ALL_CAPABILITIES not in needed and needed <= held)


def proc_root_readable(
    target: EffectiveUser,
    debugger: EffectiveUser,
    debugger_caps: frozenset[str],
    target_caps: frozenset[str] = frozenset(),
) -> bool | None:
    """Whether the debugger can read the target's /proc/1/root; None when either user is unknown.

    `debugger_caps` and `target_caps` are permitted capabilities (see permitted_capabilities).
    """
    if debugger.uid == 0 and _covers(debugger_caps, frozenset({"SYS_PTRACE"})):
        return True
    if not (target.known and debugger.known):
        return None
    same_ids = target.uid == debugger.uid and target.gid == debugger.gid
    return same_ids and _covers(debugger_caps, target_caps)


def debugger_can_read_target(
    pod: dict, target_name: str, target_image_user: str | None, debugger: dict, debug_image_user: str | None
) -> bool | None:
    """proc_root_readable for a target container of the pod and a debugger container dict.

    The debugger inherits the pod's securityContext like any container of the pod.
    """
    target_container = find_container(pod, target_name) or {}
    target_user = effective_user_of(target_container, pod, target_image_user)
    debugger_user = effective_user_of(debugger, pod, debug_image_user)
    return proc_root_readable(
        target_user,
        debugger_user,
        permitted_capabilities(debugger.get("securityContext"), debugger_user.uid),
        permitted_capabilities(target_container.get("securityContext"), target_user.uid),
    )
