"""PURE: `Status` bodies worded exactly as kube-apiserver words them.

Every error the emulator returns is built here, so tests compare against one source of truth.
"""

from __future__ import annotations

from typing import Any

PATCH_MEDIA_TYPES = (
    "application/json-patch+json, application/merge-patch+json, "
    "application/apply-patch+yaml, application/strategic-merge-patch+json"
)


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def success() -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> dict[str, Any]:
    """`pods "x" not found` (resource is the plural, e.g. pods, deployments)."""
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return status(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', details)


def resource_not_found() -> dict[str, Any]:
    """An unknown URL or resource: the 404 whose details are empty."""
    return status(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, name: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return status(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists', details)


def conflict(resource: str, name: str, detail: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    message = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}'
    return status(409, "Conflict", message, details)


def forbidden_rbac(
    user: str,
    verb: str,
    resource: str,
    namespace: str | None,
    name: str | None = None,
    group: str = "",
    subresource: str = "",
) -> dict[str, Any]:
    """The RBAC authorizer's refusal, as the API server phrases it."""
    full = f"{resource}/{subresource}" if subresource else resource
    what = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{what} is forbidden: User "{user}" cannot {verb} resource "{full}" in API group "{group}"{scope}'
    )
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return status(403, "Forbidden", message, details)


def forbidden_pod_security(pod_name: str, level: str, version: str, violations: list[str]) -> dict[str, Any]:
    """Pod Security admission's refusal: pods "x" is forbidden: violates PodSecurity "LEVEL:VERSION": ..."""
    prefix = f'pods "{pod_name}" is forbidden: violates PodSecurity "{level}:{version}": '
    message = prefix + ", ".join(violations)
    return status(403, "Forbidden", message, {"name": pod_name, "kind": "pods"})


def invalid(kind: str, name: str, causes: list[dict[str, str]]) -> dict[str, Any]:
    """`422 Invalid`: causes are {"reason", "message", "field"} with message like `Not found: "x"`."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return status(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {joined}',
        {"name": name, "kind": kind, "causes": causes},
    )


def bad_request(message: str) -> dict[str, Any]:
    return status(400, "BadRequest", message)


def unsupported_media_type(content_type: str, accepted: str = PATCH_MEDIA_TYPES) -> dict[str, Any]:
    return status(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {accepted}",
    )


def method_not_allowed() -> dict[str, Any]:
    return status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def entity_too_large(limit: int) -> dict[str, Any]:
    return status(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def unauthorized() -> dict[str, Any]:
    return status(401, "Unauthorized", "Unauthorized")


def internal_error(message: str) -> dict[str, Any]:
    return status(500, "InternalError", f"Internal error occurred: {message}")
