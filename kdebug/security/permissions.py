"""PURE: the access an operation needs, as SelfSubjectAccessReviews, and a Role that grants it.

One round of reviews runs before anything is mutated (the adapter sends them concurrently). An
unanswered review (None: the cluster has no authorization API, or it failed) is not a denial: kdebug
proceeds and lets the real call decide. Websocket attach and exec are authorized as `get` on older
servers and as `create` since 1.35 (AuthorizePodWebsocketUpgradeCreatePermission), so both are
checked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from kdebug.errors import PermissionDeniedError, UsageError

SSAR_API_VERSION = "authorization.k8s.io/v1"
RBAC_API_GROUP = "rbac.authorization.k8s.io"
DEFAULT_ROLE_NAME = "kdebug-debugger"
SUBJECT_PLACEHOLDER = "REPLACE-WITH-YOUR-USER"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
CLUSTER_SCOPED_RESOURCES = frozenset({"namespaces", "nodes"})


@dataclass(frozen=True)
class Permission:
    """One verb on one resource (with its subresource) in one namespace ("" = cluster scope)."""

    verb: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    group: str = ""
    name: str = ""  # a single object, for cluster-scoped reads such as the namespace itself

    @property
    def resource_path(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @property
    def cluster_scoped(self) -> bool:
        return self.resource in CLUSTER_SCOPED_RESOURCES

    def __str__(self) -> str:
        return f"{self.verb} {self.resource_path}"


# (verb, resource, subresource) each operation needs in the target's namespace.
_POD_READ = ("get", "pods", "")
_WEBSOCKET_ATTACH = (("create", "pods", "attach"), ("get", "pods", "attach"))
_WEBSOCKET_EXEC = (("create", "pods", "exec"), ("get", "pods", "exec"))
OPERATION_NEEDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "attach": (_POD_READ, ("patch", "pods", "ephemeralcontainers"), *_WEBSOCKET_ATTACH),
    "run": (_POD_READ, ("patch", "pods", "ephemeralcontainers"), *_WEBSOCKET_ATTACH, *_WEBSOCKET_EXEC),
    "copy": (_POD_READ, ("create", "pods", ""), ("delete", "pods", ""), *_WEBSOCKET_ATTACH),
    "doctor": (_POD_READ, ("get", "namespaces", "")),
}


def required_permissions(operation: str, namespace: str) -> list[Permission]:
    """What `operation` (attach, run, copy, doctor) needs in `namespace`."""
    if operation not in OPERATION_NEEDS:
        raise UsageError(f"unknown operation {operation!r}: choose one of {', '.join(OPERATION_NEEDS)}")
    permissions = []
    for verb, resource, subresource in OPERATION_NEEDS[operation]:
        if resource in CLUSTER_SCOPED_RESOURCES:
            permissions.append(Permission(verb, resource, subresource, name=namespace))
        else:
            permissions.append(Permission(verb, resource, subresource, namespace=namespace))
    return permissions


def access_review_body(permission: Permission) -> dict:
    """The SelfSubjectAccessReview that asks whether the caller holds `permission`."""
    attributes = {"verb": permission.verb, "group": permission.group, "resource": permission.resource}
    if permission.subresource:
        attributes["subresource"] = permission.subresource
    if permission.namespace:
        attributes["namespace"] = permission.namespace
    if permission.name:
        attributes["name"] = permission.name
    return {
        "apiVersion": SSAR_API_VERSION,
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def rules_review_body(namespace: str) -> dict:
    """The SelfSubjectRulesReview that lists what the caller may do in `namespace`."""
    return {
        "apiVersion": SSAR_API_VERSION,
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }


def complete_resource_rules(answer: dict | None) -> list[dict] | None:
    """The resourceRules of a rules review, or None when there are none to trust (no answer, or the
    server says the list is incomplete: other authorizers, or an evaluation error)."""
    status = answer.get("status") if isinstance(answer, dict) else None
    if not isinstance(status, dict) or status.get("incomplete") or status.get("evaluationError"):
        return None
    rules = status.get("resourceRules")
    return [rule for rule in rules if isinstance(rule, dict)] if isinstance(rules, list) else None


def rules_allow(rules: Sequence[dict], permission: Permission) -> bool:
    """Whether RBAC-style `rules` (a rules review's resourceRules) grant `permission`, matched as RBAC
    does: "*" wildcards, "resource/subresource", "*/subresource", and resourceNames when present."""
    return any(_rule_allows(rule, permission) for rule in rules)


def _rule_allows(rule: dict, permission: Permission) -> bool:
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    names = rule.get("resourceNames") or []
    if not ({"*", permission.verb} & set(verbs)) or not ({"*", permission.group} & set(groups)):
        return False
    if names and permission.name not in names:
        return False
    wanted = {"*", permission.resource_path}
    if permission.subresource:
        wanted.add(f"*/{permission.subresource}")
    return bool(wanted & set(rule.get("resources") or []))


def allowed_by_rules() -> dict:
    """An answer, in a SelfSubjectAccessReview's shape, for a permission a rules review granted."""
    return {"status": {"allowed": True, "reason": "granted by the SelfSubjectRulesReview"}}


def review_allowed(answer: dict | None) -> bool | None:
    """True/False from a review's status; None when there is no answer to read."""
    if not answer or not isinstance(answer.get("status"), dict):
        return None
    # allowed false is a refusal even with an evaluationError: RBAC reports unrelated broken bindings there
    return answer["status"].get("allowed") is True


def missing_permissions(
    permissions: Sequence[Permission], answers: Sequence[dict | None]
) -> list[Permission]:
    """The permissions whose review answered not allowed (unanswered ones are not missing)."""
    if len(permissions) != len(answers):
        raise ValueError("one answer per permission is needed")
    return [p for p, a in zip(permissions, answers, strict=True) if review_allowed(a) is False]


def unanswered_permissions(
    permissions: Sequence[Permission], answers: Sequence[dict | None]
) -> list[Permission]:
    return [p for p, a in zip(permissions, answers, strict=True) if review_allowed(a) is None]


def _scope(permission: Permission) -> str:
    return f'namespace "{permission.namespace}"' if permission.namespace else "the cluster scope"


def missing_message(missing: Sequence[Permission], username: str | None = None) -> str:
    """One line naming exactly what is missing, grouped by namespace."""
    who = f'user "{username}"' if username else "you"
    by_scope: dict[str, list[str]] = {}
    for permission in missing:
        by_scope.setdefault(_scope(permission), []).append(str(permission))
    parts = [f"{', '.join(items)} in {scope}" for scope, items in by_scope.items()]
    return f"{who} may not {'; '.join(parts)}"


def missing_permissions_error(
    missing: Sequence[Permission], username: str | None = None
) -> PermissionDeniedError:
    return PermissionDeniedError(
        missing_message(missing, username),
        hint="`kdebug doctor --rbac` prints a Role and RoleBinding that grant exactly this",
    )


# --- Role and RoleBinding YAML (written by hand: pure modules import no YAML library) ---


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def _rules(permissions: Sequence[Permission]) -> list[dict]:
    """One rule per (group, resource[/subresource], resourceNames), verbs merged, first-seen order."""
    rules: dict[tuple[str, str, str], list[str]] = {}
    for permission in permissions:
        key = (
            permission.group,
            permission.resource_path,
            permission.name if permission.cluster_scoped else "",
        )
        verbs = rules.setdefault(key, [])
        if permission.verb not in verbs:
            verbs.append(permission.verb)
    return [
        {
            "apiGroups": [group],
            "resources": [resource],
            "verbs": verbs,
            "resourceNames": [name] if name else [],
        }
        for (group, resource, name), verbs in rules.items()
    ]


def _rules_yaml(rules: list[dict]) -> list[str]:
    lines = ["rules:"]
    for rule in rules:
        lines.append(f"  - apiGroups: [{', '.join(_q(g) for g in rule['apiGroups'])}]")
        lines.append(f"    resources: [{', '.join(_q(r) for r in rule['resources'])}]")
        if rule["resourceNames"]:
            lines.append(f"    resourceNames: [{', '.join(_q(n) for n in rule['resourceNames'])}]")
        lines.append(f"    verbs: [{', '.join(_q(v) for v in rule['verbs'])}]")
    return lines


def _subject_yaml(subject_user: str | None) -> list[str]:
    if subject_user and subject_user.startswith(SERVICE_ACCOUNT_PREFIX):
        sa_namespace, _, sa_name = subject_user[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        return [
            "subjects:",
            "  - kind: ServiceAccount",
            f"    name: {_q(sa_name)}",
            f"    namespace: {_q(sa_namespace)}",
        ]
    lines = ["subjects:"]
    if not subject_user:
        lines.append("  # replace the name with the user (or use kind: Group) that runs kdebug")
    lines += [
        "  - kind: User",
        f"    apiGroup: {RBAC_API_GROUP}",
        f"    name: {_q(subject_user or SUBJECT_PLACEHOLDER)}",
    ]
    return lines


def _role_and_binding(
    kind: str, name: str, namespace: str | None, rules: list[dict], subject_user: str | None
) -> list[str]:
    namespace_line = [f"  namespace: {_q(namespace)}"] if namespace else []
    role = [
        f"apiVersion: {RBAC_API_GROUP}/v1",
        f"kind: {kind}",
        "metadata:",
        f"  name: {_q(name)}",
        *namespace_line,
        *_rules_yaml(rules),
    ]
    binding = [
        "---",
        f"apiVersion: {RBAC_API_GROUP}/v1",
        f"kind: {kind}Binding",
        "metadata:",
        f"  name: {_q(name)}",
        *namespace_line,
        "roleRef:",
        f"  apiGroup: {RBAC_API_GROUP}",
        f"  kind: {kind}",
        f"  name: {_q(name)}",
        *_subject_yaml(subject_user),
    ]
    return role + binding


def role_yaml(
    namespace: str,
    permissions: Sequence[Permission],
    name: str = DEFAULT_ROLE_NAME,
    subject_user: str | None = None,
) -> str:
    """A minimal Role and RoleBinding granting exactly `permissions` in `namespace`.

    Cluster-scoped reads (the namespace object itself) cannot live in a Role: they get a
    ClusterRole and ClusterRoleBinding limited to that one object by resourceNames.
    """
    namespaced = [p for p in permissions if not p.cluster_scoped]
    cluster = [p for p in permissions if p.cluster_scoped]
    documents: list[list[str]] = []
    if namespaced:
        documents.append(_role_and_binding("Role", name, namespace, _rules(namespaced), subject_user))
    if cluster:
        cluster_name = f"{name}-{namespace}"
        documents.append(_role_and_binding("ClusterRole", cluster_name, None, _rules(cluster), subject_user))
    return "\n---\n".join("\n".join(lines) for lines in documents) + "\n" if documents else ""
