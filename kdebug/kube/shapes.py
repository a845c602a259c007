"""PURE: shape checks of API answers, applied by kdebug.kube.client to every object it hands out.

Callers index answers as the API defines them (`pod["metadata"]["name"]`, `spec.get("containers") or
[]`); a server, or something posing as one, may send any JSON instead. Checked here once, a wrong shape
is one ApiError naming the field, never a TypeError deep inside a caller. Only the fields kdebug reads
are checked; every other field passes as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kdebug.errors import ApiError

# A path whose answer is a pod (the pod, its ephemeralcontainers subresource) or a list of pods.
_POD_PATH = re.compile(r"^/api/v1/(namespaces/[^/]+/)?pods(/[^/]+(/ephemeralcontainers)?)?$")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
_METADATA_STRINGS = ("name", "namespace", "uid", "resourceVersion", "generateName", "deletionTimestamp")

Check = Callable[[object, str], None]


class ShapeError(ValueError):
    """`where` (a dotted field path) does not have the type the API defines for it."""


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _expect(value: object, kind: type, where: str) -> None:
    if not isinstance(value, kind):
        wanted = {dict: "an object", list: "a list", str: "a string"}.get(kind, kind.__name__)
        raise ShapeError(f"{where} must be {wanted} (got {_type_name(value)})")


def _optional(obj: dict, key: str, kind: type, where: str) -> object:
    value = obj.get(key)
    if value is not None:
        _expect(value, kind, f"{where}{key}")
    return value


def _string_map(value: object, where: str) -> None:
    _expect(value, dict, where)
    assert isinstance(value, dict)
    for key, item in value.items():
        _expect(item, str, f"{where}[{key[:40]}]")


def _list_of_objects(obj: dict, key: str, where: str, each: Check | None = None) -> None:
    items = _optional(obj, key, list, where)
    for index, item in enumerate(items or []):  # type: ignore[arg-type]
        _expect(item, dict, f"{where}{key}[{index}]")
        if each is not None:
            each(item, f"{where}{key}[{index}].")


def _metadata(meta: dict, where: str, *, named: bool) -> None:
    for key in _METADATA_STRINGS:
        _optional(meta, key, str, where)
    if named and not meta.get("name"):
        raise ShapeError(f"{where}name is missing")
    for key in ("labels", "annotations"):
        if meta.get(key) is not None:
            _string_map(meta[key], f"{where}{key}")
    _list_of_objects(meta, "ownerReferences", where)


def _container(container: dict, where: str) -> None:
    _expect(container.get("name"), str, f"{where}name")
    _optional(container, "image", str, where)
    for key in ("command", "args", "env"):
        _optional(container, key, list, where)
    _optional(container, "securityContext", dict, where)


def _container_status(status: dict, where: str) -> None:
    _optional(status, "name", str, where)
    _optional(status, "imageID", str, where)
    for key in ("state", "lastState"):
        state = _optional(status, key, dict, where)
        for phase in ("waiting", "running", "terminated"):
            _optional(state or {}, phase, dict, f"{where}{key}.")  # type: ignore[arg-type]


def check_object(obj: object, *, pod: bool | None = None, named: bool = False, where: str = "") -> None:
    """`obj` is an API object: object metadata/spec/status where present, with the fields kdebug reads
    typed as the API defines them. A `pod` (by default: an object of kind Pod) must have metadata with
    a name and a spec."""
    _expect(obj, dict, where.rstrip(".") or "the answer")
    assert isinstance(obj, dict)
    if obj.get("kind") == "Status":  # an error or a deletion's answer: only its words are read
        return
    pod = obj.get("kind") == "Pod" if pod is None else pod
    for section in ("metadata", "spec", "status"):
        if pod and section != "status" and section not in obj:
            raise ShapeError(f"{where}{section} is missing")
        _optional(obj, section, dict, where)
    meta = obj.get("metadata") or {}
    _metadata(meta, f"{where}metadata.", named=named or pod)
    spec = obj.get("spec") or {}
    _optional(spec, "nodeName", str, f"{where}spec.")
    selector = _optional(spec, "selector", dict, f"{where}spec.")
    if isinstance(selector, dict):  # a workload's label selector (a Service's is a plain string map)
        if isinstance(selector.get("matchLabels"), dict):
            _string_map(selector["matchLabels"], f"{where}spec.selector.matchLabels")
        _list_of_objects(selector, "matchExpressions", f"{where}spec.selector.")
    for key in _CONTAINER_LISTS:
        _list_of_objects(spec, key, f"{where}spec.", _container)
    status = obj.get("status") or {}
    _optional(status, "phase", str, f"{where}status.")
    for key in _STATUS_LISTS:
        _list_of_objects(status, key, f"{where}status.", _container_status)
    for key in ("resourceRules", "nonResourceRules"):  # a SelfSubjectRulesReview's answer
        _list_of_objects(status, key, f"{where}status.")
    info = _optional(status, "userInfo", dict, f"{where}status.")  # a SelfSubjectReview's answer
    if isinstance(info, dict):
        _optional(info, "username", str, f"{where}status.userInfo.")
        _optional(info, "groups", list, f"{where}status.userInfo.")


def answers_with_pods(path: str) -> bool:
    """The answer to `path` is a pod, or a list of pods."""
    return bool(_POD_PATH.match(path))


def checked_answer(answer: object, method: str, path: str) -> dict:
    """`answer` (parsed JSON) if it has the shape kdebug reads; ApiError naming the first wrong field."""
    what = f"the answer to {method} {path}"
    if not isinstance(answer, dict):
        raise ApiError(f"{what} is not a JSON object (got {_type_name(answer)})")
    pods = answers_with_pods(path)
    try:
        if "items" in answer:  # a list: every item is a whole object with a name
            _expect(answer["items"], list, "items")
            _optional(answer, "metadata", dict, "")
            for index, item in enumerate(answer["items"]):
                check_object(item, pod=pods or None, named=True, where=f"items[{index}].")
        else:
            check_object(answer, pod=pods or None)
    except ShapeError as exc:
        kind = "Pod" if pods else "API object"
        raise ApiError(f"{what} is not a valid {kind}: {exc}") from None
    return answer


def checked_event(event: object, path: str) -> dict:
    """One watch event: {"type": str, "object": an object}; the object of a pod watch a pod."""
    what = f"the watch of {path}"
    if not isinstance(event, dict):
        raise ApiError(f"{what} sent an event that is not a JSON object (got {_type_name(event)})")
    kind, obj = event.get("type"), event.get("object")
    if not isinstance(kind, str):
        raise ApiError(f"{what} sent an event whose type is not a string")
    if not isinstance(obj, dict):
        raise ApiError(f"{what} sent an event whose object is not a JSON object (got {_type_name(obj)})")
    try:
        # a BOOKMARK carries only a resourceVersion; an ERROR a Status
        check_object(obj, pod=answers_with_pods(path) and kind in ("ADDED", "MODIFIED", "DELETED"))
    except ShapeError as exc:
        raise ApiError(f"{what} sent a {kind[:20]} event whose object is not valid: {exc}") from None
    return event
