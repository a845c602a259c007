"""PURE: users, their rule tables, and the answers to access reviews.

A rule is RBAC-like: {"verbs": [...], "resources": ["pods", "pods/attach"], "namespaces": ["*"],
"apiGroups": [""]}; "*" matches anything, a missing key means "*". A user whose rules are None may do
everything (like a member of system:masters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Rule = dict[str, list[str]]


@dataclass
class User:
    name: str
    groups: tuple[str, ...] = ()
    rules: list[Rule] | None = None
    token: str = ""
    uid: str = ""

    @property
    def all_groups(self) -> list[str]:
        return [*self.groups, "system:authenticated"]


@dataclass(frozen=True)
class Attributes:
    verb: str
    resource: str  # plural; "" for non-resource URLs
    subresource: str = ""
    namespace: str | None = None
    group: str = ""
    name: str = ""


def _matches(values: list[str] | None, wanted: str) -> bool:
    return values is None or "*" in values or wanted in values


def _resource_matches(resources: list[str] | None, attrs: Attributes) -> bool:
    if resources is None or "*" in resources:
        return True
    full = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return full in resources or (bool(attrs.subresource) and f"{attrs.resource}/*" in resources)


def _namespace_matches(namespaces: list[str] | None, namespace: str | None) -> bool:
    if namespaces is None or "*" in namespaces:
        return True
    return namespace is not None and namespace in namespaces


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    return (
        _matches(rule.get("verbs"), attrs.verb)
        and _resource_matches(rule.get("resources"), attrs)
        and _namespace_matches(rule.get("namespaces"), attrs.namespace)
        and _matches(rule.get("apiGroups"), attrs.group)
    )


def is_allowed(rules: list[Rule] | None, attrs: Attributes) -> bool:
    if rules is None:
        return True
    return any(rule_allows(rule, attrs) for rule in rules)


@dataclass
class UserTable:
    users: dict[str, User] = field(default_factory=dict)

    def by_token(self, token: str) -> User | None:
        return next((u for u in self.users.values() if u.token and u.token == token), None)


def access_review_response(review: dict[str, Any], user: User) -> dict[str, Any]:
    """The SelfSubjectAccessReview the server returns: the request echoed back with status filled in."""
    spec = review.get("spec") or {}
    attrs_in = spec.get("resourceAttributes")
    if isinstance(attrs_in, dict):
        attrs = Attributes(
            verb=str(attrs_in.get("verb", "")),
            resource=str(attrs_in.get("resource", "")),
            subresource=str(attrs_in.get("subresource", "")),
            namespace=attrs_in.get("namespace") or None,
            group=str(attrs_in.get("group", "")),
            name=str(attrs_in.get("name", "")),
        )
        allowed = is_allowed(user.rules, attrs)
    else:
        allowed = True  # non-resource URLs (/version, /healthz, ...) are open to authenticated users
    status: dict[str, Any] = {"allowed": allowed}
    if allowed:
        status["reason"] = "allowed by the kdebug emulator's rule table"
    meta = dict(review.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


# What every authenticated user may do (the system:basic-user and system:discovery cluster roles).
BASIC_USER_RULES: list[dict[str, Any]] = [
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
]
DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]


def rules_review_response(review: dict[str, Any], user: User) -> dict[str, Any]:
    """The SelfSubjectRulesReview the server returns: the rules that apply in spec.namespace."""
    spec = review.get("spec") or {}
    namespace = spec.get("namespace") or None
    if user.rules is None:  # like system:masters: cluster-admin's wildcard rules
        resource_rules: list[dict[str, Any]] = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        non_resource_rules = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
    else:
        resource_rules = [
            {key: list(rule.get(key) or ["*"]) for key in ("verbs", "apiGroups", "resources")}
            for rule in user.rules
            if _namespace_matches(rule.get("namespaces"), namespace)
        ]
        non_resource_rules = [{"verbs": ["get"], "nonResourceURLs": list(DISCOVERY_URLS)}]
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": {
            "resourceRules": resource_rules + [dict(rule) for rule in BASIC_USER_RULES],
            "nonResourceRules": non_resource_rules,
            "incomplete": False,
        },
    }


def self_subject_review(user: User) -> dict[str, Any]:
    user_info: dict[str, Any] = {"username": user.name, "groups": user.all_groups}
    if user.uid:
        user_info["uid"] = user.uid
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": user_info},
    }


# --- kubectl sends access reviews as protobuf: just enough of the wire format to read them ---------

PROTOBUF_MAGIC = b"k8s\x00"
_RESOURCE_FIELDS = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}
_NON_RESOURCE_FIELDS = {1: "path", 2: "verb"}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields of one message (the last of a repeated number wins); others skipped."""
    found: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            found[number] = data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return found


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    fields = _fields(data)
    return {name: fields[number].decode("utf-8") for number, name in names.items() if number in fields}


def decode_access_review_protobuf(body: bytes) -> dict[str, Any]:
    """A SelfSubjectAccessReview in Kubernetes' protobuf envelope, as the JSON shape (ValueError if bad)."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise ValueError("missing the k8s protobuf magic")
    raw = _fields(body[len(PROTOBUF_MAGIC) :]).get(2, b"")
    spec_bytes = _fields(raw).get(2, b"")
    spec_fields = _fields(spec_bytes)
    spec: dict[str, Any] = {}
    if 1 in spec_fields:
        spec["resourceAttributes"] = _strings(spec_fields[1], _RESOURCE_FIELDS)
    if 2 in spec_fields:
        spec["nonResourceAttributes"] = _strings(spec_fields[2], _NON_RESOURCE_FIELDS)
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": spec,
    }
