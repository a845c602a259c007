"""PURE: the three PATCH media types of kube-apiserver, applied to plain dicts.

Strategic merge follows apimachinery's strategicpatch (merge keys from the Pod schema, `$patch`,
`$setElementOrder/`, `$retainKeys`, `$deleteFromPrimitiveList/`), merge patch is RFC 7386 and JSON patch
is RFC 6902. Failures are `PatchError`s carrying the Status body the API server would send.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kdebug_emulator import status

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
SUPPORTED_MEDIA_TYPES = f"{JSON_PATCH}, {MERGE}, {STRATEGIC}"
MAX_JSON_PATCH_OPERATIONS = 10000

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"

# mergepatch's sentinel errors: which HTTP code the API server maps each to
ERR_BAD_JSON_DOC = "invalid JSON document"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_RETAIN_KEYS_MISMATCH = "patch content doesn't match retainKeys list"


class PatchError(Exception):
    """A patch the API server would refuse; `status` is the complete Status body to return."""

    def __init__(self, status_body: dict[str, Any]):
        super().__init__(status_body.get("message", ""))
        self.status = status_body


class _MergeError(Exception):
    """Raised inside strategic merge; `code` is the HTTP status the API server answers with."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- schema (patch strategies of the Pod API)


def _node(
    fields: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    merge: bool = False,
    items: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A schema node: struct `fields`, or a list (`merge` + merge `key`, element schema `items`), or a map."""
    return {"fields": fields or {}, "key": key, "merge": merge, "items": items, "values": values}


_CONTAINER = _node(
    {
        "ports": _node(key="containerPort", merge=True),
        "env": _node(key="name", merge=True),
        "volumeMounts": _node(key="mountPath", merge=True),
        "volumeDevices": _node(key="devicePath", merge=True),
    }
)
_OBJECT_META = _node(
    {
        "finalizers": _node(merge=True),
        "ownerReferences": _node(key="uid", merge=True),
    }
)
_POD_SPEC = _node(
    {
        "volumes": _node(key="name", merge=True),
        "initContainers": _node(key="name", merge=True, items=_CONTAINER),
        "containers": _node(key="name", merge=True, items=_CONTAINER),
        "ephemeralContainers": _node(key="name", merge=True, items=_CONTAINER),
        "imagePullSecrets": _node(key="name", merge=True),
        "hostAliases": _node(key="ip", merge=True),
        "topologySpreadConstraints": _node(key="topologyKey", merge=True),
        "resourceClaims": _node(key="name", merge=True),
        "schedulingGates": _node(key="name", merge=True),
    }
)
_POD_STATUS = _node(
    {
        "conditions": _node(key="type", merge=True),
        "podIPs": _node(key="ip", merge=True),
        "hostIPs": _node(key="ip", merge=True),
        "resourceClaimStatuses": _node(key="name", merge=True),
    }
)
_SCHEMAS: dict[str, dict[str, Any]] = {
    "Pod": _node({"metadata": _OBJECT_META, "spec": _POD_SPEC, "status": _POD_STATUS}),
}
_GENERIC = _node({"metadata": _OBJECT_META})
_UNKNOWN = _node()


def _field_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["fields"].get(name) or _UNKNOWN


def _element_schema(list_schema: dict[str, Any]) -> dict[str, Any]:
    return list_schema["items"] or _UNKNOWN


# ---------------------------------------------------------------- Go-flavoured formatting for error texts


def _go_value(value: Any) -> str:
    """fmt's %v of a decoded JSON value (maps print with sorted keys)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return str(value)


def _go_kind(value: Any) -> str:
    return {dict: "map", list: "slice", str: "string", bool: "bool", int: "float64", float: "float64"}.get(
        type(value), "ptr"
    )


# ---------------------------------------------------------------- strategic merge


def strategic_merge(original: dict, patch: dict, kind: str = "Pod") -> dict:
    """Apply a strategic-merge patch (already decoded) to `original`; neither input is mutated."""
    schema = _SCHEMAS.get(kind, _GENERIC)
    return _merge_map(copy.deepcopy(original), copy.deepcopy(patch), schema)


def _merge_map(original: dict, patch: dict, schema: dict[str, Any]) -> dict:
    if DIRECTIVE in patch:
        return _map_directive(patch[DIRECTIVE], patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, schema)
    for key, patch_value in list(patch.items()):
        is_delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if is_delete_list:
            key = _directive_target(key, DELETE_FROM_PRIMITIVE_LIST, ERR_BAD_PRIMITIVE_LIST)
        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original:
            if not is_delete_list:
                original[key] = _new_subtree(patch_value, _field_schema(schema, key))
            continue
        current = original[key]
        if type(current) is not type(patch_value) or not isinstance(current, dict | list):
            original[key] = patch_value
            continue
        field = _field_schema(schema, key)
        if isinstance(current, dict):
            original[key] = _merge_map(current, patch_value, field["values"] or field)
        else:
            original[key] = _merge_list_field(current, patch_value, field, is_delete_list)
    return original


def _map_directive(directive: Any, patch: dict) -> dict:
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != DIRECTIVE}
    if directive == "delete":
        return {}
    raise _MergeError(f"unknown patch type: {_go_value(directive)} in map: {_go_value(patch)}", 500)


def _new_subtree(value: Any, schema: dict[str, Any]) -> Any:
    """A subtree the original lacks: merged into nothing, so its nulls vanish (the server's
    IgnoreUnmatchedNulls) and its directives are applied instead of being stored as data."""
    if isinstance(value, dict):
        return _merge_map({}, value, schema["values"] or schema)
    if isinstance(value, list):
        element = _element_schema(schema)
        return [_new_subtree(v, element) if isinstance(v, dict) else v for v in value]
    return value


def _directive_target(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise _MergeError(error, 400)
    return rest


def _apply_retain_keys(original: dict, patch: dict) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _MergeError(ERR_BAD_RETAIN_KEYS, 400)
    allowed = {k for k in retain if isinstance(k, str)}
    for key, value in patch.items():
        skip = value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER))
        if not skip and key not in allowed:
            raise _MergeError(ERR_BAD_RETAIN_KEYS, 400)
    for key in [k for k in original if k not in allowed]:
        del original[key]


def _merge_ordered_lists(original: dict, patch: dict, schema: dict[str, Any]) -> None:
    """`$setElementOrder/<list>`: merge that list now and order it as the directive says."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _MergeError(f"expected a slice, but received a {_go_kind(order)}", 500)
        name = _directive_target(key, SET_ELEMENT_ORDER, ERR_BAD_SET_ELEMENT_ORDER)
        field = _field_schema(schema, name)
        merge_key = field["key"] or ""
        in_original, in_patch = name in original, name in patch
        current, patch_list = original.get(name), patch.get(name)
        for value in (current if in_original else [], patch_list if in_patch else []):
            if not isinstance(value, list):
                raise _MergeError(f"expected a slice, but received a {_go_kind(value)}", 500)
        _check_order_matches_patch(patch_list if in_patch else [], order, merge_key)
        if in_original and in_patch:
            merged = _merge_list_field(current, patch_list, field, False)
        elif in_patch:
            merged = patch_list
        elif in_original:
            merged = current
        else:
            continue
        named, unnamed = _partition(merged, order, merge_key)
        original[name] = _normalize_order(named, unnamed, order, current if in_original else [], merge_key)
        patch.pop(name, None)


def _check_order_matches_patch(patch_list: list, order: list, merge_key: str) -> None:
    """The patch list must follow the relative order of the `$setElementOrder` list."""
    if not order or not patch_list:
        return
    kept = [v for v in patch_list if not (merge_key and isinstance(v, dict) and v.get(DIRECTIVE) == "delete")]
    i = j = 0
    while i < len(kept) and j < len(order):
        if isinstance(kept[i], dict) and DIRECTIVE in kept[i]:
            i += 1
            continue
        if _merge_value(kept[i], merge_key) == _merge_value(order[j], merge_key):
            i += 1
        j += 1
    if i < len(kept):
        raise _MergeError(
            f"The order in patch list:\n{_go_value(patch_list)}\n doesn't match {SET_ELEMENT_ORDER} list:\n"
            f"{_go_value(order)}\n",
            500,
        )


def _merge_value(item: Any, merge_key: str) -> Any:
    if not merge_key:
        return _hashable(item)
    if not isinstance(item, dict):
        raise _MergeError(f"expected a map, but received a {_go_kind(item)}", 500)
    if merge_key not in item:
        raise _MergeError(f"map: {_go_value(item)} does not contain declared merge key: {merge_key}", 500)
    return _hashable(item[merge_key])


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else (type(value), value)


def _merge_list_field(current: list, patch_list: list, field: dict[str, Any], is_delete_list: bool) -> list:
    if not field["merge"]:
        return patch_list
    return _merge_list(current, patch_list, field, is_delete_list)


def _merge_list(current: list, patch_list: list, field: dict[str, Any], is_delete_list: bool) -> list:
    if not current and not patch_list:
        return current
    elements = current + patch_list
    if any(isinstance(e, list) for e in elements):
        raise _MergeError(ERR_NO_LIST_OF_LISTS, 422)
    merge_key = field["key"] or ""
    if not any(isinstance(e, dict) for e in elements):
        if is_delete_list:
            doomed = {_hashable(v) for v in patch_list}
            return [v for v in current if _hashable(v) not in doomed]
        merged = _dedupe(current + patch_list)
        server_order = current
    else:
        if not merge_key:
            raise _MergeError("cannot merge lists without merge key for type map", 500)
        current, patch_list = _apply_list_directives(current, patch_list, merge_key)
        server_order = list(current)
        merged = _merge_list_elements(list(current), patch_list, merge_key, _element_schema(field))
    in_patch, server_only = _partition(merged, patch_list, merge_key)
    return _normalize_order(in_patch, server_only, patch_list, server_order, merge_key)


def _dedupe(values: list) -> list:
    seen: set[Any] = set()
    unique = []
    for value in values:
        marker = _hashable(value)
        if marker not in seen:
            seen.add(marker)
            unique.append(value)
    return unique


def _apply_list_directives(current: list, patch_list: list, merge_key: str) -> tuple[list, list]:
    """`{"$patch": "delete", key: v}` removes matching elements; `{"$patch": "replace"}` replaces the list."""
    plain = []
    replace = False
    for item in patch_list:
        if not isinstance(item, dict):
            raise _MergeError(f"expected a map, but received a {_go_kind(item)}", 500)
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _MergeError(
                    f"map: {_go_value(item)} does not contain declared merge key: {merge_key}", 500
                )
            value = _hashable(item[merge_key])
            current = [c for c in current if not (isinstance(c, dict) and _key_of(c, merge_key) == value)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _MergeError("merging lists cannot yet be specified in the patch", 500)
        else:
            raise _MergeError(f"unknown patch type: {_go_value(directive)} in map: {_go_value(item)}", 500)
    if replace:
        return plain, []
    return current, plain


def _key_of(item: dict, merge_key: str) -> Any:
    return _hashable(item[merge_key]) if merge_key in item else object()


def _merge_list_elements(merged: list, patch_list: list, merge_key: str, schema: dict[str, Any]) -> list:
    for item in patch_list:
        value = _merge_value(item, merge_key)
        for index, existing in enumerate(merged):
            if not isinstance(existing, dict):
                raise _MergeError(f"value for key {index} is not a map.", 500)
            if _key_of(existing, merge_key) == value:
                merged[index] = _merge_map(existing, item, schema)
                break
        else:
            merged.append(item)
    return merged


def _partition(items: list, by: list, merge_key: str) -> tuple[list, list]:
    """Split `items` into those named in `by` and the server-only rest, each keeping its order."""
    names = {
        _merge_value(v, merge_key) for v in by if not merge_key or (isinstance(v, dict) and merge_key in v)
    }
    named, rest = [], []
    for item in items:
        (named if _merge_value(item, merge_key) in names else rest).append(item)
    return named, rest


def _index_in(order: list, item: Any, merge_key: str) -> int:
    wanted = _merge_value(item, merge_key) if not merge_key or isinstance(item, dict) else None
    for index, candidate in enumerate(order):
        if isinstance(candidate, dict) or not merge_key:
            candidate_value = _hashable(candidate.get(merge_key)) if merge_key else _hashable(candidate)
            if candidate_value == wanted:
                return index
    return -1


def _sort_by(items: list, order: list, merge_key: str) -> list:
    deletes = [i for i in items if merge_key and isinstance(i, dict) and i.get(DIRECTIVE) == "delete"]
    kept = [i for i in items if not (merge_key and isinstance(i, dict) and i.get(DIRECTIVE) == "delete")]
    ranked = sorted(
        enumerate(kept), key=lambda pair: (_index_in(order, pair[1], merge_key) % (len(order) + 1), pair[0])
    )
    return [item for _, item in ranked] + deletes


def _normalize_order(named: list, server_only: list, order: list, server_order: list, merge_key: str) -> list:
    """Upstream's normalizeElementOrder: patch items in `order`, server-only items interleaved by the
    live order; an item the live list does not know goes before a server-only one."""
    named = _sort_by(named, order, merge_key)
    server_only = _sort_by(server_only, server_order, merge_key)
    result: list = []
    i = j = 0
    while i < len(server_only) or j < len(named):
        if j >= len(named):
            result.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            result.append(named[j])
            j += 1
        else:
            left = _index_in(server_order, server_only[i], merge_key)
            right = _index_in(server_order, named[j], merge_key)
            if left >= 0 and right >= 0 and left < right:
                result.append(server_only[i])
                i += 1
            else:
                result.append(named[j])
                j += 1
    return result


# ---------------------------------------------------------------- RFC 7386


def merge_patch(original: dict, patch: object) -> object:
    """RFC 7386 JSON merge patch; inputs are not mutated."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------- RFC 6902


class _OpError(Exception):
    pass


def json_patch(original: dict, ops: list) -> dict:
    """RFC 6902 JSON patch (RFC 6901 pointers); raises PatchError as the API server answers."""
    document: Any = copy.deepcopy(original)
    try:
        for op in ops:
            document = _apply_op(document, op)
    except _OpError as err:
        raise PatchError(_op_failed_status()) from err
    if not isinstance(document, dict):
        raise PatchError(_op_failed_status())
    return document


def _op_failed_status() -> dict[str, Any]:
    # The server wraps every op failure in a generic 422 and drops the library's wording.
    return status.status(422, "Invalid", "the server rejected our request due to an error in our request", {})


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _OpError(f"invalid path {path!r}")
    if path == "":
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _array_index(token: str, length: int, allow_end: bool) -> int:
    if allow_end and token == "-":
        return length
    if not token.isdigit() or not token.isascii():
        raise _OpError(f"invalid array index {token!r}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise _OpError("index out of range")
    return index


def _parent(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), False)]
        else:
            raise _OpError("missing path")
    return node


def _get(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        return document
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _OpError("missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), False)]
    raise _OpError("missing path")


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        raise _OpError("add to the root is not supported")
    parent = _parent(document, tokens)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(tokens[-1], len(parent), True), value)
    else:
        raise _OpError("missing path")
    return document


def _remove(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _OpError("remove of the root is not supported")
    parent = _parent(document, tokens)
    if isinstance(parent, dict) and tokens[-1] in parent:
        del parent[tokens[-1]]
    elif isinstance(parent, list):
        del parent[_array_index(tokens[-1], len(parent), False)]
    else:
        raise _OpError("missing value")
    return document


def _value_of(op: dict) -> Any:
    if "value" not in op:
        raise _OpError("missing value")
    return copy.deepcopy(op["value"])


def _apply_op(document: Any, op: Any) -> Any:
    if not isinstance(op, dict):
        raise _OpError("Unexpected kind: unknown")
    kind = op.get("op")
    tokens = _pointer(op.get("path"))
    if kind == "add":
        return _add(document, tokens, _value_of(op))
    if kind == "remove":
        return _remove(document, tokens)
    if kind == "replace":
        _get(document, tokens)
        return _add(_remove(document, tokens), tokens, _value_of(op))
    if kind in ("move", "copy"):
        source = _pointer(op.get("from"))
        value = copy.deepcopy(_get(document, source))
        if kind == "move":
            if tokens[: len(source)] == source and len(tokens) > len(source):
                raise _OpError("move into its own child")
            document = _remove(document, source)
        return _add(document, tokens, value)
    if kind == "test":
        return _test(document, tokens, op)
    raise _OpError(f"Unexpected kind: {kind}")


def _test(document: Any, tokens: list[str], op: dict) -> Any:
    try:
        actual = _get(document, tokens)
    except _OpError:
        # evanphx/json-patch lets a test for null pass on a missing path
        if op.get("value") is None:
            return document
        raise
    if not _json_equal(actual, op.get("value")):
        raise _OpError("test failed")
    return document


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return left == right


# ---------------------------------------------------------------- decoding, like Go's encoding/json


def _quote_char(c: int) -> str:
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    text = json.dumps(chr(c))[1:-1] if c < 0x80 else chr(c)
    if c == 0x7F:
        text = "\\x7f"
    return f"'{text}'"


class _SyntaxError(Exception):
    pass


def _syntax_error(data: bytes) -> str | None:
    """The message Go's encoding/json gives for malformed `data`, or None when it is valid JSON."""
    try:
        _GoScanner(data).scan()
    except _SyntaxError as err:
        return str(err)
    return None


class _GoScanner:
    """An iterative JSON validator that words its errors as Go's encoding/json scanner does."""

    WHITESPACE = b" \t\r\n"

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def fail(self, context: str) -> None:
        if self.pos >= len(self.data):
            raise _SyntaxError("unexpected end of JSON input")
        raise _SyntaxError(f"invalid character {_quote_char(self.data[self.pos])} {context}")

    def skip_space(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in self.WHITESPACE:
            self.pos += 1

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def scan(self) -> None:
        stack: list[str] = []  # "{" or "["
        self.skip_space()
        self.value(stack)
        while True:
            self.skip_space()
            if not stack:
                if self.pos < len(self.data):
                    self.fail("after top-level value")
                return
            c = self.peek()
            if stack[-1] == "{":
                if c == ord(","):
                    self.pos += 1
                    self.skip_space()
                    self.object_key()
                    self.value(stack)
                    continue
                if c == ord("}"):
                    self.pos += 1
                    stack.pop()
                    continue
                self.fail("after object key:value pair")
            else:
                if c == ord(","):
                    self.pos += 1
                    self.skip_space()
                    self.value(stack)
                    continue
                if c == ord("]"):
                    self.pos += 1
                    stack.pop()
                    continue
                self.fail("after array element")

    def object_key(self) -> None:
        if self.peek() != ord('"'):
            self.fail("looking for beginning of object key string")
        self.string()
        self.skip_space()
        if self.peek() != ord(":"):
            self.fail("after object key")
        self.pos += 1
        self.skip_space()

    def value(self, stack: list[str]) -> None:
        """Scan one value; a container is opened on `stack` (closed by scan()), never by recursion."""
        while True:
            self.skip_space()
            c = self.peek()
            if c in (ord("{"), ord("[")):
                self.pos += 1
                self.skip_space()
                closing = ord("}") if c == ord("{") else ord("]")
                if self.peek() == closing:
                    self.pos += 1
                    return
                stack.append(chr(c))
                if c == ord("{"):
                    self.object_key()
                continue
            if c == ord('"'):
                self.string()
            elif c == ord("-") or ord("0") <= c <= ord("9"):
                self.number()
            elif c in (ord("t"), ord("f"), ord("n")):
                self.literal()
            else:
                self.fail("looking for beginning of value")
            return

    def string(self) -> None:
        self.pos += 1
        while True:
            c = self.peek()
            if c == -1:
                self.fail("")
            if c == ord('"'):
                self.pos += 1
                return
            if c < 0x20:
                self.fail("in string literal")
            if c == ord("\\"):
                self.pos += 1
                e = self.peek()
                if e == ord("u"):
                    self.pos += 1
                    for _ in range(4):
                        if self.peek() == -1 or chr(self.peek()) not in "0123456789abcdefABCDEF":
                            self.fail("in \\u hexadecimal character escape")
                        self.pos += 1
                    continue
                if e == -1 or chr(e) not in '"\\/bfnrt':
                    self.fail("in string escape code")
            self.pos += 1

    def digits(self, context: str) -> None:
        if not (ord("0") <= self.peek() <= ord("9")):
            self.fail(context)
        while ord("0") <= self.peek() <= ord("9"):
            self.pos += 1

    def number(self) -> None:
        if self.peek() == ord("-"):
            self.pos += 1
            if not (ord("0") <= self.peek() <= ord("9")):
                self.fail("in numeric literal")
        if self.peek() == ord("0"):
            self.pos += 1
        else:
            self.digits("in numeric literal")
        if self.peek() == ord("."):
            self.pos += 1
            self.digits("after decimal point in numeric literal")
        if self.peek() in (ord("e"), ord("E")):
            self.pos += 1
            if self.peek() in (ord("+"), ord("-")):
                self.pos += 1
            self.digits("in exponent of numeric literal")

    def literal(self) -> None:
        word = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}[self.peek()]
        for expected in word:
            if self.peek() != expected:
                self.fail(f"in literal {word.decode()} (expecting {_quote_char(expected)})")
            self.pos += 1


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _decode(body: bytes) -> Any:
    """Decode like Go: syntax errors first, in Go's words; Python's json only sees valid input."""
    error = _syntax_error(body)
    if error is not None:
        raise _DecodeError(error)
    return json.loads(body.decode("utf-8", errors="replace"))


class _DecodeError(Exception):
    pass


def _type_error(value: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {_json_type(value)} into Go value of type {go_type}"


# ---------------------------------------------------------------- dispatch


def apply_patch(content_type: str, original: dict, body: bytes) -> dict:
    """Apply a PATCH body of the given media type to `original` (not mutated) as kube-apiserver does."""
    media_type = content_type.split(";", 1)[0].strip()
    try:
        if media_type == STRATEGIC:
            return _apply_strategic(original, body)
        if media_type == MERGE:
            return _apply_merge(original, body)
        if media_type == JSON_PATCH:
            return _apply_json_patch(original, body)
    except PatchError:
        raise
    except RecursionError:
        raise PatchError(status.bad_request("exceeded max depth")) from None
    except Exception as err:  # noqa: BLE001 - a bug here must still come out as the server's 500
        raise PatchError(status.internal_error(str(err))) from err
    raise PatchError(status.unsupported_media_type(content_type, SUPPORTED_MEDIA_TYPES))


def _apply_strategic(original: dict, body: bytes) -> dict:
    try:
        patch = _decode(body)
    except _DecodeError as err:
        raise PatchError(status.bad_request(str(err))) from None
    if patch is None:
        return copy.deepcopy(original)
    if not isinstance(patch, dict):
        raise PatchError(status.bad_request(_type_error(patch, "map[string]interface {}")))
    try:
        result = strategic_merge(original, patch, kind=str(original.get("kind") or "Pod"))
    except _MergeError as err:
        raise PatchError(_merge_error_status(err)) from None
    return _checked_result(result)


def _merge_error_status(err: _MergeError) -> dict[str, Any]:
    if err.code == 400:
        return status.bad_request(str(err))
    if err.code == 422:
        return status.status(422, "Invalid", str(err), {})
    # errors that are not a Status become a 500 with an empty reason
    body = status.status(500, "", str(err))
    del body["reason"]
    return body


def _apply_merge(original: dict, body: bytes) -> dict:
    try:
        patch = _decode(body)
    except _DecodeError as err:
        raise PatchError(status.bad_request(f"error decoding patch: {err}")) from None
    if patch is None:
        raise PatchError(status.bad_request("Invalid JSON Patch"))
    if not isinstance(patch, dict):
        message = f"error decoding patch: {_type_error(patch, 'map[string]interface {}')}"
        raise PatchError(status.bad_request(message))
    result = merge_patch(original, patch)
    assert isinstance(result, dict)
    return _checked_result(result)


def _apply_json_patch(original: dict, body: bytes) -> dict:
    try:
        ops = _decode(body)
    except _DecodeError as err:
        raise PatchError(status.bad_request(f"error decoding patch: {err}")) from None
    if ops is None:
        return copy.deepcopy(original)
    if not isinstance(ops, list):
        message = f"error decoding patch: {_type_error(ops, '[]handlers.jsonPatchOp')}"
        raise PatchError(status.bad_request(message))
    _check_op_shapes(ops)
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        message = (
            f"Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}"
        )
        raise PatchError(status.status(413, "RequestEntityTooLarge", message))
    return _checked_result(json_patch(original, ops))


def _check_op_shapes(ops: list) -> None:
    for op in ops:
        if op is None:
            continue
        if not isinstance(op, dict):
            message = f"error decoding patch: {_type_error(op, 'handlers.jsonPatchOp')}"
            raise PatchError(status.bad_request(message))
        for name in ("op", "path", "from"):
            if name in op and op[name] is not None and not isinstance(op[name], str):
                message = (
                    f"error decoding patch: json: cannot unmarshal {_json_type(op[name])} "
                    f"into Go struct field jsonPatchOp.{name} of type string"
                )
                raise PatchError(status.bad_request(message))


_OBJECT_FIELDS = ("metadata", "spec", "status")


def _checked_result(result: dict) -> dict:
    """The patched object must still decode as an object: its metadata/spec/status must be maps."""
    for name in _OBJECT_FIELDS:
        value = result.get(name)
        if name in result and value is not None and not isinstance(value, dict):
            kind = str(result.get("kind") or "Pod")
            detail = (
                f"json: cannot unmarshal {_json_type(value)} into Go struct field {kind}.{name} "
                f"of type v1.{_GO_TYPES[name]}"
            )
            cause = {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {json.dumps(_compact(result))}: {detail}",
                "field": "patch",
            }
            body = status.status(
                422, "Invalid", f' "" is invalid: patch: {cause["message"]}', {"causes": [cause]}
            )
            raise PatchError(body)
    return result


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


_GO_TYPES = {"metadata": "ObjectMeta", "spec": "PodSpec", "status": "PodStatus"}
