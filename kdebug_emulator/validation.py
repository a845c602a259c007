"""PURE: the API server's Pod validation for create and for the `ephemeralcontainers` subresource.

Each function returns Status causes, `{"reason", "message", "field"}`, worded as kube-apiserver's field
errors (pkg/apis/core/validation); `[]` means valid. Feed them to `status.invalid("Pod", name, causes)`.
Like the real server, validation runs on defaulted objects: a missing terminationMessagePolicy or
imagePullPolicy counts as its default, not as "Required value".
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
_DNS1123_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{DNS1123_LABEL_FMT}')"
)
DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{DNS1123_SUBDOMAIN_FMT}')"
)
ENV_NAME_MESSAGE = (
    "a valid environment variable name must consist only of printable ASCII characters other than '='"
)

TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
EPHEMERAL_FORBIDDEN = "cannot be set for an Ephemeral Container"
# Fields an ephemeral container may not set, in the order of the Go struct (so errors come out in its order).
EPHEMERAL_FORBIDDEN_FIELDS = (
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
)

Cause = dict[str, str]


# ---------------------------------------------------------------- field errors, worded like field.Error


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def required(field: str, detail: str = "") -> Cause:
    message = "Required value" + (f": {detail}" if detail else "")
    return {"reason": "FieldValueRequired", "message": message, "field": field}


def forbidden(field: str, detail: str) -> Cause:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def duplicate(field: str, value: Any) -> Cause:
    return {"reason": "FieldValueDuplicate", "message": f"Duplicate value: {_quote(value)}", "field": field}


def not_found(field: str, value: Any) -> Cause:
    return {"reason": "FieldValueNotFound", "message": f"Not found: {_quote(value)}", "field": field}


def invalid(field: str, value: Any, detail: str) -> Cause:
    message = f"Invalid value: {_quote(value)}: {detail}"
    return {"reason": "FieldValueInvalid", "message": message, "field": field}


def not_supported(field: str, value: Any, supported: tuple[str, ...]) -> Cause:
    choices = ", ".join(_quote(s) for s in supported)
    message = f"Unsupported value: {_quote(value)}: supported values: {choices}"
    return {"reason": "FieldValueNotSupported", "message": message, "field": field}


# ---------------------------------------------------------------- shape helpers (bad input never crashes)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _containers(spec: dict, kind: str) -> list[dict]:
    return [_dict(c) for c in _list(spec.get(kind))]


def _name(container: dict) -> str:
    name = container.get("name")
    return name if isinstance(name, str) else ""


# ---------------------------------------------------------------- names


def dns1123_label_errors(value: str, field: str) -> list[Cause]:
    errors = []
    if len(value) > 63:
        errors.append(invalid(field, value, "must be no more than 63 characters"))
    if not _DNS1123_LABEL.match(value):
        errors.append(invalid(field, value, DNS1123_LABEL_MESSAGE))
    return errors


def dns1123_subdomain_errors(value: str, field: str) -> list[Cause]:
    errors = []
    if len(value) > 253:
        errors.append(invalid(field, value, "must be no more than 253 characters"))
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.append(invalid(field, value, DNS1123_SUBDOMAIN_MESSAGE))
    return errors


def _is_env_name(name: str) -> bool:
    return all(32 <= ord(ch) <= 126 and ch != "=" for ch in name)


# ---------------------------------------------------------------- containers


def _container_common_errors(container: dict, path: str, volume_names: set[str]) -> list[Cause]:
    """validateContainerCommon + validateContainerOnlyForPod, in their order."""
    errors: list[Cause] = []
    name = _name(container)
    if not name:
        errors.append(required(f"{path}.name"))
    else:
        errors.extend(dns1123_label_errors(name, f"{path}.name"))
    image = container.get("image")
    if not isinstance(image, str) or not image:
        errors.append(required(f"{path}.image"))
    policy = container.get("terminationMessagePolicy", "File")
    if policy not in TERMINATION_MESSAGE_POLICIES:
        field = f"{path}.terminationMessagePolicy"
        policies = TERMINATION_MESSAGE_POLICIES
        errors.append(required(field) if policy == "" else not_supported(field, policy, policies))
    errors.extend(_env_errors(container, path))
    errors.extend(_volume_mount_errors(container, path, volume_names))
    pull = container.get("imagePullPolicy", "IfNotPresent")
    if pull not in PULL_POLICIES:
        field = f"{path}.imagePullPolicy"
        errors.append(required(field) if pull == "" else not_supported(field, pull, PULL_POLICIES))
    if isinstance(image, str) and image and image != image.strip():
        errors.append(invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    return errors


def _env_errors(container: dict, path: str) -> list[Cause]:
    errors = []
    for index, env in enumerate(_list(container.get("env"))):
        field = f"{path}.env[{index}].name"
        name = _dict(env).get("name")
        if not isinstance(name, str) or not name:
            errors.append(required(field))
        elif not _is_env_name(name):
            errors.append(invalid(field, name, ENV_NAME_MESSAGE))
    return errors


def _volume_mount_errors(container: dict, path: str, volume_names: set[str]) -> list[Cause]:
    errors = []
    for index, mount in enumerate(_list(container.get("volumeMounts"))):
        mount = _dict(mount)
        field = f"{path}.volumeMounts[{index}]"
        name = mount.get("name")
        if not isinstance(name, str) or not name:
            errors.append(required(f"{field}.name"))
        elif name not in volume_names:
            errors.append(not_found(f"{field}.name", name))
        if not mount.get("mountPath"):
            errors.append(required(f"{field}.mountPath"))
    return errors


def _is_set(value: Any) -> bool:
    """A Go zero value is unset: absent, null, false, 0, "", {} and []."""
    return value not in (None, False, 0, "", {}, [])


def _containers_errors(spec: dict, volume_names: set[str]) -> tuple[list[Cause], set[str]]:
    """Regular containers, then init containers; returns the errors and the names seen."""
    errors: list[Cause] = []
    containers = _containers(spec, "containers")
    if not containers:
        errors.append(required("spec.containers"))
    names: set[str] = set()
    for kind, items in (("containers", containers), ("initContainers", _containers(spec, "initContainers"))):
        for index, container in enumerate(items):
            path = f"spec.{kind}[{index}]"
            errors.extend(_container_common_errors(container, path, volume_names))
            name = _name(container)
            if name in names:
                errors.append(duplicate(f"{path}.name", name))
            names.add(name)
    return errors, names


def _ephemeral_errors(spec: dict, other_names: set[str], volume_names: set[str]) -> list[Cause]:
    """validateEphemeralContainers: unique names, a real target, and only the allowed fields."""
    errors: list[Cause] = []
    all_names = set(other_names)
    for index, container in enumerate(_containers(spec, "ephemeralContainers")):
        path = f"spec.ephemeralContainers[{index}]"
        errors.extend(_container_common_errors(container, path, volume_names))
        name = _name(container)
        if name in all_names:
            errors.append(duplicate(f"{path}.name", name))
        all_names.add(name)
        target = container.get("targetContainerName")
        if target and (not isinstance(target, str) or target not in other_names):
            errors.append(not_found(f"{path}.targetContainerName", target))
        for field in EPHEMERAL_FORBIDDEN_FIELDS:
            if _is_set(container.get(field)):
                errors.append(forbidden(f"{path}.{field}", EPHEMERAL_FORBIDDEN))
        for mount_index, mount in enumerate(_list(container.get("volumeMounts"))):
            for field in ("subPath", "subPathExpr"):
                if _dict(mount).get(field):
                    mount_path = f"{path}.volumeMounts[{mount_index}].{field}"
                    errors.append(forbidden(mount_path, EPHEMERAL_FORBIDDEN))
    return errors


def _pod_spec_errors(pod: dict) -> list[Cause]:
    spec = _dict(pod.get("spec"))
    volume_names = {name for v in _list(spec.get("volumes")) if isinstance(name := _dict(v).get("name"), str)}
    errors, names = _containers_errors(spec, volume_names)
    return errors + _ephemeral_errors(spec, names, volume_names)


def _metadata_errors(pod: dict) -> list[Cause]:
    metadata = _dict(pod.get("metadata"))
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        if metadata.get("generateName"):
            return []
        return [required("metadata.name", "name or generateName is required")]
    return dns1123_subdomain_errors(name, "metadata.name")


# ---------------------------------------------------------------- entry points


def validate_new_pod(pod: dict) -> list[Cause]:
    """ValidatePodCreate: metadata, spec, and no ephemeral containers on create."""
    errors = _metadata_errors(pod) + _pod_spec_errors(pod)
    if _list(_dict(pod.get("spec")).get("ephemeralContainers")):
        errors.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errors


def drop_non_ephemeral_changes(old_pod: dict, new_pod: dict) -> dict:
    """What the server keeps of an `ephemeralcontainers` update: the old pod with the new
    spec.ephemeralContainers. Every other change is silently dropped, never refused."""
    kept = copy.deepcopy(old_pod)
    if not isinstance(kept.get("spec"), dict):
        kept["spec"] = {}
    spec = kept["spec"]
    new_ephemeral = _dict(new_pod.get("spec")).get("ephemeralContainers")
    if new_ephemeral is None:
        spec.pop("ephemeralContainers", None)
    else:
        spec["ephemeralContainers"] = copy.deepcopy(new_ephemeral)
    return kept


def validate_ephemeral_update(old_pod: dict, new_pod: dict) -> list[Cause]:
    """ValidatePodEphemeralContainersUpdate, run on the pod the server would store
    (see drop_non_ephemeral_changes)."""
    pod = drop_non_ephemeral_changes(old_pod, new_pod)
    errors = _metadata_errors(pod) + _pod_spec_errors(pod)
    annotations = _dict(_dict(old_pod.get("metadata")).get("annotations"))
    if MIRROR_POD_ANNOTATION in annotations:
        return [forbidden("[]", "static pods do not support ephemeral containers")]
    return errors + _existing_ephemeral_errors(old_pod, pod)


def _existing_ephemeral_errors(old_pod: dict, new_pod: dict) -> list[Cause]:
    new_by_name = {_name(c): c for c in _containers(_dict(new_pod.get("spec")), "ephemeralContainers")}
    errors = []
    for old in _containers(_dict(old_pod.get("spec")), "ephemeralContainers"):
        name = _name(old)
        if name not in new_by_name:
            detail = f"existing ephemeral containers {_quote(name)} may not be removed\n"
            errors.append(forbidden("spec.ephemeralContainers", detail))
        elif new_by_name[name] != old:
            diff = _diff(old, new_by_name[name])
            detail = f"existing ephemeral containers {_quote(name)} may not be changed\n{diff}"
            errors.append(forbidden("spec.ephemeralContainers", detail))
    return errors


def _diff(old: dict, new: dict) -> str:
    """A short cmp.Diff-like listing of the changed fields."""
    lines = ["  core.EphemeralContainer{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key in old:
                lines.append(f"- \t{key}: {json.dumps(old[key], sort_keys=True)},")
            if key in new:
                lines.append(f"+ \t{key}: {json.dumps(new[key], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"
