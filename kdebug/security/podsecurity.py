"""PURE: the Pod Security Standards as Pod Security admission evaluates them.

Used by the emulator (to refuse pods and ephemeral containers with the admission's exact words) and by
kdebug itself (to predict a refusal before sending a patch). Checks, their order and their messages follow
k8s.io/pod-security-admission/policy: the baseline checks run first, then either the baseline-only
"overlapping" checks or the restricted checks, each group in the order upstream registers them.
Every check looks at containers, initContainers and ephemeralContainers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
MODES = ("enforce", "audit", "warn")
LABEL_PREFIX = "pod-security.kubernetes.io/"
LATEST = "latest"

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS_BY_VERSION = (
    (
        0,
        (
            "kernel.shm_rmid_forced",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.ping_group_range",
            "net.ipv4.ip_unprivileged_port_start",
        ),
    ),
    (27, ("net.ipv4.ip_local_reserved_ports",)),
    (
        29,
        (
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ),
    ),
    (32, ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem")),
)
RESTRICTED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_SINCE_1_31 = SELINUX_TYPES | {"container_engine_t"}
SECCOMP_ANNOTATION_POD = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_ANNOTATION_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_ANNOTATION_CONTAINER = "container.apparmor.security.beta.kubernetes.io/"
_LATEST_MINOR = 10_000  # "latest" compares newer than any v1.N


# ---------------------------------------------------------------- policy labels


def _parse_level(value: str, fallback: str) -> str:
    return value if value in LEVELS else fallback


def _parse_version(value: str) -> str:
    if value == LATEST:
        return LATEST
    minor = value[3:] if value.startswith("v1.") else ""
    if minor.isdigit() and minor.isascii() and (minor == "0" or not minor.startswith("0")):
        return value
    return LATEST


def policy_from_labels(labels: dict | None) -> dict:
    """The namespace's policy per mode, as (level, version). Missing labels mean ("privileged", "latest").
    Like the admission, an invalid enforce level means "restricted" (fail closed), an invalid audit or warn
    level means "privileged" (fail open), and an invalid version means "latest"."""
    labels = labels if isinstance(labels, dict) else {}
    policy = {}
    for mode in MODES:
        level = labels.get(f"{LABEL_PREFIX}{mode}")
        version = labels.get(f"{LABEL_PREFIX}{mode}-version")
        fallback = "restricted" if mode == "enforce" else "privileged"
        parsed_level = "privileged" if level is None else _parse_level(str(level), fallback)
        parsed_version = LATEST if version is None else _parse_version(str(version))
        policy[mode] = (parsed_level, parsed_version)
    return policy


def _minor(version: str) -> int:
    parsed = _parse_version(str(version))
    return _LATEST_MINOR if parsed == LATEST else int(parsed[3:])


# ---------------------------------------------------------------- helpers as upstream names them


def _pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _join_quote(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _containers_phrase(names: list[str]) -> str:
    return f"{_pluralize('container', 'containers', len(names))} {_join_quote(names)}"


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _visit_containers(spec: dict) -> Iterator[dict]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        items = spec.get(kind)
        for container in items if isinstance(items, list) else []:
            yield _dict(container)


def _name(container: dict) -> str:
    return str(container.get("name", ""))


def _security_context(container: dict) -> dict:
    return _dict(container.get("securityContext"))


def _user_namespaced(spec: dict) -> bool:
    return spec.get("hostUsers") is False


Result = tuple[str, str] | None  # (forbidden reason, forbidden detail) or None when allowed
CheckFn = Callable[[dict, dict, int], Result]


# ---------------------------------------------------------------- baseline checks


def _app_armor(meta: dict, spec: dict, minor: int) -> Result:
    """securityContext.appArmorProfile (pod, then containers) and the legacy per-container annotations."""
    setters: list[str] = []
    bad_types: set[str] = set()
    pod_profile = _dict(spec.get("securityContext")).get("appArmorProfile")
    if isinstance(pod_profile, dict) and not _allowed_app_armor_type(pod_profile):
        setters.append("pod")
        bad_types.add(str(pod_profile.get("type") or ""))
    bad = []
    for container in _visit_containers(spec):
        profile = _security_context(container).get("appArmorProfile")
        if isinstance(profile, dict) and not _allowed_app_armor_type(profile):
            bad.append(_name(container))
            bad_types.add(str(profile.get("type") or ""))
    if bad:
        setters.append(_containers_phrase(bad))
    annotations = sorted(
        f'{key}="{value}"'
        for key, value in _dict(meta.get("annotations")).items()
        if key.startswith(APPARMOR_ANNOTATION_CONTAINER) and not _allowed_app_armor(str(value))
    )
    if annotations:
        setters.append(_pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    values = sorted(bad_types) + annotations
    reason = _pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values))
    return reason, f"{' and '.join(setters)} must not set AppArmor profile type to {_join_quote(values)}"


def _allowed_app_armor_type(profile: dict) -> bool:
    return profile.get("type") in ("RuntimeDefault", "Localhost")


def _allowed_app_armor(profile: str) -> bool:
    return profile in ("", "runtime/default") or profile.startswith("localhost/")


def _host_namespaces(meta: dict, spec: dict, minor: int) -> Result:
    used = sorted(name for name in ("hostIPC", "hostNetwork", "hostPID") if spec.get(name) is True)
    return ("host namespaces", ", ".join(used)) if used else None


def _host_ports(meta: dict, spec: dict, minor: int) -> Result:
    bad: list[str] = []
    ports: set[str] = set()
    for container in _visit_containers(spec):
        used = [str(p.get("hostPort")) for p in _ports(container) if p.get("hostPort") not in (None, 0)]
        if used:
            bad.append(_name(container))
            ports.update(used)
    if not bad:
        return None
    detail = (
        f"{_containers_phrase(bad)} {_pluralize('uses', 'use', len(bad))} "
        f"{_pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}"
    )
    return "hostPort", detail


def _ports(container: dict) -> list[dict]:
    ports = container.get("ports")
    return [_dict(p) for p in ports] if isinstance(ports, list) else []


def _probe_hosts(handler: Any) -> list[str]:
    handler = _dict(handler)
    hosts = []
    for kind in ("httpGet", "tcpSocket"):
        host = _dict(handler.get(kind)).get("host")
        if host:
            hosts.append(str(host))
    return hosts


def _host_probes(meta: dict, spec: dict, minor: int) -> Result:
    if minor < 34:
        return None
    bad: set[str] = set()
    hosts: set[str] = set()
    for container in _visit_containers(spec):
        lifecycle = _dict(container.get("lifecycle"))
        handlers = [container.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [lifecycle.get("postStart"), lifecycle.get("preStop")]
        found = [host for handler in handlers for host in _probe_hosts(handler)]
        if found:
            bad.add(_name(container))
            hosts.update(found)
    if not bad:
        return None
    names = sorted(bad)
    detail = (
        f"{_containers_phrase(names)} {_pluralize('uses', 'use', len(names))} "
        f"{_pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
        f"{_join_quote(sorted(hosts))}"
    )
    return "probe or lifecycle host", detail


def _privileged(meta: dict, spec: dict, minor: int) -> Result:
    bad = [_name(c) for c in _visit_containers(spec) if _security_context(c).get("privileged") is True]
    if bad:
        return "privileged", f"{_containers_phrase(bad)} must not set securityContext.privileged=true"
    return None


def _proc_mount(meta: dict, spec: dict, minor: int) -> Result:
    if minor >= 34 and _user_namespaced(spec):
        return None
    bad, types = [], set()
    for container in _visit_containers(spec):
        proc_mount = _security_context(container).get("procMount")
        if proc_mount is not None and proc_mount != "Default":
            bad.append(_name(container))
            types.add(str(proc_mount))
    if bad:
        quoted = _join_quote(sorted(types))
        detail = f"{_containers_phrase(bad)} must not set securityContext.procMount to {quoted}"
        return "procMount", detail
    return None


def _se_linux(meta: dict, spec: dict, minor: int) -> Result:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(options: dict) -> bool:
        ok = True
        selinux_type = str(options.get("type") or "")
        if selinux_type not in (SELINUX_TYPES_SINCE_1_31 if minor >= 31 else SELINUX_TYPES):
            ok = False
            bad_types.add(selinux_type)
        for key in ("user", "role"):
            if options.get(key):
                ok = False
                flags[key] = True
        return ok

    setters = []
    pod_options = _dict(spec.get("securityContext")).get("seLinuxOptions")
    if isinstance(pod_options, dict) and not valid(pod_options):
        setters.append("pod")
    bad = []
    for container in _visit_containers(spec):
        options = _security_context(container).get("seLinuxOptions")
        if isinstance(options, dict) and not valid(options):
            bad.append(_name(container))
    if bad:
        setters.append(_containers_phrase(bad))
    if not setters:
        return None
    data = []
    # upstream only lists user and role when a bad type was also found; kept for identical messages
    if bad_types:
        data.append(f"{_pluralize('type', 'types', len(bad_types))} {_join_quote(sorted(bad_types))}")
        data += [f"{key} may not be set" for key in ("user", "role") if flags[key]]
    return (
        "seLinuxOptions",
        f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}",
    )


def _sysctls(meta: dict, spec: dict, minor: int) -> Result:
    allowed = {name for since, names in SAFE_SYSCTLS_BY_VERSION if minor >= since for name in names}
    sysctls = _dict(spec.get("securityContext")).get("sysctls")
    names = [str(_dict(s).get("name")) for s in sysctls] if isinstance(sysctls, list) else []
    forbidden = [name for name in names if name not in allowed]
    return ("forbidden sysctls", ", ".join(forbidden)) if forbidden else None


def _host_process(meta: dict, spec: dict, minor: int) -> Result:
    def sets_host_process(context: dict) -> bool:
        return _dict(context.get("windowsOptions")).get("hostProcess") is True

    setters = ["pod"] if sets_host_process(_dict(spec.get("securityContext"))) else []
    bad = [_name(c) for c in _visit_containers(spec) if sets_host_process(_security_context(c))]
    if bad:
        setters.append(_containers_phrase(bad))
    if setters:
        return (
            "hostProcess",
            f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true",
        )
    return None


# ---------------------------------------------------------------- baseline checks that restricted replaces


def _capabilities_baseline(meta: dict, spec: dict, minor: int) -> Result:
    bad, extra = [], set()
    for container in _visit_containers(spec):
        added = _capabilities(container).get("add")
        non_default = (
            [str(c) for c in added if str(c) not in BASELINE_CAPABILITIES] if isinstance(added, list) else []
        )
        if non_default:
            bad.append(_name(container))
            extra.update(non_default)
    if bad:
        detail = (
            f"{_containers_phrase(bad)} must not include {_join_quote(sorted(extra))} "
            "in securityContext.capabilities.add"
        )
        return "non-default capabilities", detail
    return None


def _capabilities(container: dict) -> dict:
    return _dict(_security_context(container).get("capabilities"))


def _host_path_volumes(meta: dict, spec: dict, minor: int) -> Result:
    names = [str(_dict(v).get("name")) for v in _volumes(spec) if _dict(v).get("hostPath") is not None]
    if names:
        return "hostPath volumes", f"{_pluralize('volume', 'volumes', len(names))} {_join_quote(names)}"
    return None


def _volumes(spec: dict) -> list:
    volumes = spec.get("volumes")
    return volumes if isinstance(volumes, list) else []


def _seccomp_baseline(meta: dict, spec: dict, minor: int) -> Result:
    if minor < 19:
        return _seccomp_annotations(meta, spec)
    return _seccomp_fields(spec, require=False)


def _seccomp_annotations(meta: dict, spec: dict) -> Result:
    annotations = _dict(meta.get("annotations"))
    keys = [SECCOMP_ANNOTATION_POD] + [
        SECCOMP_ANNOTATION_CONTAINER + _name(c) for c in _visit_containers(spec)
    ]
    forbidden = sorted(
        {
            f'{key}="{annotations[key]}"'
            for key in keys
            if key in annotations and not _valid_seccomp_value(annotations[key])
        }
    )
    if forbidden:
        return (
            "seccompProfile",
            f"forbidden {_pluralize('annotation', 'annotations', len(forbidden))} {', '.join(forbidden)}",
        )
    return None


def _valid_seccomp_value(value: Any) -> bool:
    return value in ("runtime/default", "docker/default") or str(value).startswith("localhost/")


def _valid_seccomp_type(profile: Any) -> bool:
    return _dict(profile).get("type") in ("RuntimeDefault", "Localhost")


def _seccomp_fields(spec: dict, require: bool) -> Result:
    """Both seccomp checks: a bad type anywhere fails; `require` also fails containers with no profile."""
    setters, bad_values = [], set()
    pod_profile = _dict(spec.get("securityContext")).get("seccompProfile")
    pod_set = False
    if pod_profile is not None:
        if _valid_seccomp_type(pod_profile):
            pod_set = True
        else:
            setters.append("pod")
            bad_values.add(str(_dict(pod_profile).get("type") or ""))
    explicit, implicit = [], []
    for container in _visit_containers(spec):
        profile = _security_context(container).get("seccompProfile")
        if profile is not None:
            if not _valid_seccomp_type(profile):
                explicit.append(_name(container))
                bad_values.add(str(_dict(profile).get("type") or ""))
        elif not pod_set:
            implicit.append(_name(container))
    if explicit:
        setters.append(_containers_phrase(explicit))
    if setters:
        detail = f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
        return "seccompProfile", detail + _join_quote(sorted(bad_values))
    if require and implicit:
        return "seccompProfile", (
            f"pod or {_containers_phrase(implicit)} must set securityContext.seccompProfile.type to "
            '"RuntimeDefault" or "Localhost"'
        )
    return None


# ---------------------------------------------------------------- restricted checks


def _allow_privilege_escalation(meta: dict, spec: dict, minor: int) -> Result:
    if minor < 8:
        return None
    bad = [
        _name(c)
        for c in _visit_containers(spec)
        if _security_context(c).get("allowPrivilegeEscalation") is not False
    ]
    if bad:
        return "allowPrivilegeEscalation != false", (
            f"{_containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false"
        )
    return None


def _capabilities_restricted(meta: dict, spec: dict, minor: int) -> Result:
    if minor < 22:
        return _capabilities_baseline(meta, spec, minor)
    missing_drop, adding, forbidden = [], [], set()
    for container in _visit_containers(spec):
        capabilities = _capabilities(container)
        if not _security_context(container) or "capabilities" not in _security_context(container):
            missing_drop.append(_name(container))
            continue
        dropped = capabilities.get("drop")
        if "ALL" not in (dropped if isinstance(dropped, list) else []):
            missing_drop.append(_name(container))
        added = capabilities.get("add")
        bad = [str(c) for c in added if c != "NET_BIND_SERVICE"] if isinstance(added, list) else []
        if bad:
            adding.append(_name(container))
            forbidden.update(bad)
    details = []
    if missing_drop:
        details.append(
            f'{_containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_containers_phrase(adding)} must not include {_join_quote(sorted(forbidden))} "
            "in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _restricted_volumes(meta: dict, spec: dict, minor: int) -> Result:
    names = sorted(
        {
            str(_dict(v).get("name"))
            for v in _volumes(spec)
            if not any(_dict(v).get(source) is not None for source in RESTRICTED_VOLUME_SOURCES)
        }
    )
    if names:
        # upstream formats the list with Go's %q: ["a" "b"]
        return (
            "restricted volume types",
            f"volumes [{' '.join(chr(34) + n + chr(34) for n in names)}] have restricted types",
        )
    return None


def _run_as_non_root(meta: dict, spec: dict, minor: int) -> Result:
    if minor >= 34 and _user_namespaced(spec):
        return None
    setters = []
    pod_value = _dict(spec.get("securityContext")).get("runAsNonRoot")
    if pod_value is False:
        setters.append("pod")
    explicit, implicit = [], []
    for container in _visit_containers(spec):
        value = _security_context(container).get("runAsNonRoot")
        if value is not None:
            if value is not True:
                explicit.append(_name(container))
        elif pod_value is not True:
            implicit.append(_name(container))
    if explicit:
        setters.append(_containers_phrase(explicit))
    if setters:
        return (
            "runAsNonRoot != true",
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        return "runAsNonRoot != true", (
            f"pod or {_containers_phrase(implicit)} must set securityContext.runAsNonRoot=true"
        )
    return None


def _run_as_user(meta: dict, spec: dict, minor: int) -> Result:
    if minor < 23 or (minor >= 34 and _user_namespaced(spec)):
        return None
    setters = ["pod"] if _is_zero(_dict(spec.get("securityContext")).get("runAsUser")) else []
    bad = [_name(c) for c in _visit_containers(spec) if _is_zero(_security_context(c).get("runAsUser"))]
    if bad:
        setters.append(_containers_phrase(bad))
    if setters:
        return "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"
    return None


def _is_zero(value: Any) -> bool:
    return value == 0 and not isinstance(value, bool)


def _seccomp_restricted(meta: dict, spec: dict, minor: int) -> Result:
    if minor < 19:
        return _seccomp_annotations(meta, spec)
    return _seccomp_fields(spec, require=True)


# Registration order of k8s.io/pod-security-admission/policy (its check_*.go files, sorted by name).
BASELINE_CHECKS: tuple[CheckFn, ...] = (
    _app_armor,
    _host_namespaces,
    _host_ports,
    _host_probes,
    _privileged,
    _proc_mount,
    _se_linux,
    _sysctls,
    _host_process,
)
BASELINE_ONLY_CHECKS: tuple[CheckFn, ...] = (_capabilities_baseline, _host_path_volumes, _seccomp_baseline)
RESTRICTED_CHECKS: tuple[CheckFn, ...] = (
    _allow_privilege_escalation,
    _capabilities_restricted,
    _restricted_volumes,
    _run_as_non_root,
    _run_as_user,
    _seccomp_restricted,
)


def check_pod(pod: dict, level: str, version: str = LATEST) -> list[str]:
    """Violations of `level` at `version`, each `reason (detail)` as the admission words it; [] if allowed.
    Join them with ", " after `violates PodSecurity "LEVEL:VERSION": ` for the 403 message."""
    if level == "privileged":
        return []
    if level not in LEVELS:
        level = "restricted"
    minor = _minor(version)
    meta = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    checks = BASELINE_CHECKS + (BASELINE_ONLY_CHECKS if level == "baseline" else RESTRICTED_CHECKS)
    violations = []
    for check in checks:
        result = check(meta, spec, minor)
        if result is not None:
            reason, detail = result
            violations.append(f"{reason} ({detail})" if detail else reason)
    return violations
