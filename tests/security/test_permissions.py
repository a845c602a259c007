"""Access reviews an operation needs, reading their answers, and the Role YAML granting them."""

from __future__ import annotations

import pytest
import yaml

from kdebug.errors import ExitCode, PermissionDeniedError, UsageError
from kdebug.security.permissions import (
    Permission,
    access_review_body,
    complete_resource_rules,
    missing_message,
    missing_permissions,
    missing_permissions_error,
    required_permissions,
    role_yaml,
    rules_allow,
    unanswered_permissions,
)


def answer(allowed: bool, reason: str = "") -> dict:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "status": {"allowed": allowed, "reason": reason},
    }


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        pytest.param(
            "attach",
            ["get pods", "patch pods/ephemeralcontainers", "create pods/attach", "get pods/attach"],
            id="attach",
        ),
        pytest.param(
            "run",
            [
                "get pods",
                "patch pods/ephemeralcontainers",
                "create pods/attach",
                "get pods/attach",
                "create pods/exec",
                "get pods/exec",
            ],
            id="run adds exec",
        ),
        pytest.param(
            "copy",
            ["get pods", "create pods", "delete pods", "create pods/attach", "get pods/attach"],
            id="copy creates and deletes pods",
        ),
        pytest.param("doctor", ["get pods", "get namespaces"], id="doctor reads"),
    ],
)
def test_required_permissions(operation: str, expected: list[str]) -> None:
    assert [str(p) for p in required_permissions(operation, "lab")] == expected


def test_unknown_operation_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown operation 'nuke'"):
        required_permissions("nuke", "lab")


@pytest.mark.parametrize(
    ("permission", "attributes"),
    [
        pytest.param(
            Permission("patch", "pods", "ephemeralcontainers", namespace="lab"),
            {
                "verb": "patch",
                "group": "",
                "resource": "pods",
                "subresource": "ephemeralcontainers",
                "namespace": "lab",
            },
            id="namespaced subresource",
        ),
        pytest.param(
            Permission("get", "pods", namespace="lab"),
            {"verb": "get", "group": "", "resource": "pods", "namespace": "lab"},
            id="namespaced resource",
        ),
        pytest.param(
            Permission("get", "namespaces", name="lab"),
            {"verb": "get", "group": "", "resource": "namespaces", "name": "lab"},
            id="cluster-scoped object by name",
        ),
    ],
)
def test_access_review_body(permission: Permission, attributes: dict) -> None:
    assert access_review_body(permission) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def test_doctor_asks_for_the_namespace_object_itself() -> None:
    namespace_read = required_permissions("doctor", "lab")[1]
    assert access_review_body(namespace_read)["spec"]["resourceAttributes"] == {
        "verb": "get",
        "group": "",
        "resource": "namespaces",
        "name": "lab",
    }


ATTACH = required_permissions("attach", "lab")


@pytest.mark.parametrize(
    ("answers", "expected_missing", "expected_unanswered"),
    [
        pytest.param([answer(True)] * 4, [], [], id="all allowed"),
        pytest.param(
            [answer(True), answer(False), answer(True), answer(False)],
            ["patch pods/ephemeralcontainers", "get pods/attach"],
            [],
            id="two denied",
        ),
        pytest.param(
            [None] * 4,
            [],
            ["get pods", "patch pods/ephemeralcontainers", "create pods/attach", "get pods/attach"],
            id="no answers is not a failure",
        ),
        pytest.param(
            [answer(True), {"kind": "Status"}, answer(False), answer(True)],
            ["create pods/attach"],
            ["patch pods/ephemeralcontainers"],
            id="an answer without status is unanswered",
        ),
    ],
)
def test_reading_answers(answers: list, expected_missing: list[str], expected_unanswered: list[str]) -> None:
    assert [str(p) for p in missing_permissions(ATTACH, answers)] == expected_missing
    assert [str(p) for p in unanswered_permissions(ATTACH, answers)] == expected_unanswered


def test_denied_with_evaluation_error_is_still_missing() -> None:
    broken = {"status": {"allowed": False, "evaluationError": 'clusterrole "gone" not found'}}
    assert missing_permissions(ATTACH[:1], [broken]) == ATTACH[:1]


@pytest.mark.parametrize(
    ("missing", "username", "expected"),
    [
        pytest.param(
            [ATTACH[1]],
            None,
            'you may not patch pods/ephemeralcontainers in namespace "lab"',
            id="one missing",
        ),
        pytest.param(
            [ATTACH[1], ATTACH[2]],
            "alice",
            'user "alice" may not patch pods/ephemeralcontainers, create pods/attach in namespace "lab"',
            id="two missing, named user",
        ),
        pytest.param(
            [Permission("get", "pods", namespace="lab"), Permission("get", "namespaces", name="lab")],
            None,
            'you may not get pods in namespace "lab"; get namespaces in the cluster scope',
            id="namespaced and cluster scope",
        ),
    ],
)
def test_missing_message(missing: list[Permission], username: str | None, expected: str) -> None:
    assert missing_message(missing, username) == expected


def test_missing_permissions_error_is_permission_denied_with_hint() -> None:
    error = missing_permissions_error([ATTACH[1]])
    assert isinstance(error, PermissionDeniedError) and error.exit_code == ExitCode.PERMISSION_DENIED
    assert "kdebug doctor --rbac" in (error.hint or "") and "\n" not in error.message


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def test_role_yaml_grants_exactly_the_missing_permissions() -> None:
    role, binding = documents(role_yaml("lab", [ATTACH[1], ATTACH[2], ATTACH[3]], subject_user="alice"))
    assert role == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "kdebug-debugger", "namespace": "lab"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["create", "get"]},
        ],
    }
    assert binding == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "kdebug-debugger", "namespace": "lab"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kdebug-debugger"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}],
    }


def test_role_yaml_binds_a_service_account() -> None:
    _, binding = documents(role_yaml("lab", ATTACH, subject_user="system:serviceaccount:ops:oncall"))
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "oncall", "namespace": "ops"}]


def test_role_yaml_without_user_has_a_placeholder_subject() -> None:
    text = role_yaml("lab", ATTACH)
    _, binding = documents(text)
    assert binding["subjects"][0]["name"] == "REPLACE-WITH-YOUR-USER" and "# replace" in text


def test_namespace_read_goes_into_a_cluster_role_limited_to_that_namespace() -> None:
    docs = documents(role_yaml("lab", required_permissions("doctor", "lab"), subject_user="bob"))
    assert [d["kind"] for d in docs] == ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]
    assert docs[0]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    assert docs[2]["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["lab"], "verbs": ["get"]}
    ]
    assert docs[3]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "kdebug-debugger-lab",
    }


@pytest.mark.parametrize("name", ["weird: name", "x#y", "'quoted'"])
def test_role_yaml_quotes_names(name: str) -> None:
    role, _ = documents(role_yaml("lab", ATTACH[:1], name=name))
    assert role["metadata"]["name"] == name


def test_nothing_needed_prints_nothing() -> None:
    assert role_yaml("lab", []) == ""


ATTACH_EPHEMERAL = Permission("patch", "pods", "ephemeralcontainers", namespace="ns", name="web")


@pytest.mark.parametrize(
    ("rule", "granted"),
    [
        pytest.param({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, True, id="cluster-admin"),
        pytest.param(
            {"verbs": ["patch"], "apiGroups": [""], "resources": ["pods/ephemeralcontainers"]},
            True,
            id="exact",
        ),
        pytest.param(
            {"verbs": ["patch"], "apiGroups": [""], "resources": ["*/ephemeralcontainers"]},
            True,
            id="any resource's subresource",
        ),
        pytest.param(
            {"verbs": ["patch"], "apiGroups": [""], "resources": ["pods"]},
            False,
            id="the resource is not its subresource",
        ),
        pytest.param(
            {"verbs": ["patch"], "apiGroups": [""], "resources": ["pods/*"]},
            False,
            id="RBAC has no resource/* form",
        ),
        pytest.param({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}, False, id="other verb"),
        pytest.param(
            {"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["*"]}, False, id="other group"
        ),
        pytest.param(
            {
                "verbs": ["patch"],
                "apiGroups": [""],
                "resources": ["pods/ephemeralcontainers"],
                "resourceNames": ["api"],
            },
            False,
            id="other names",
        ),
        pytest.param(
            {
                "verbs": ["patch"],
                "apiGroups": [""],
                "resources": ["pods/ephemeralcontainers"],
                "resourceNames": ["web"],
            },
            True,
            id="named",
        ),
    ],
)
def test_rules_allow_matches_as_rbac_does(rule, granted):
    assert rules_allow([rule], ATTACH_EPHEMERAL) is granted


@pytest.mark.parametrize(
    ("status", "rules"),
    [
        pytest.param(
            {"resourceRules": [{"verbs": ["*"]}], "incomplete": False}, [{"verbs": ["*"]}], id="complete"
        ),
        pytest.param({"resourceRules": [{"verbs": ["*"]}], "incomplete": True}, None, id="incomplete"),
        pytest.param({"resourceRules": [], "evaluationError": "webhook down"}, None, id="evaluation error"),
        pytest.param({}, None, id="no rules"),
    ],
)
def test_only_a_complete_rules_review_is_trusted(status, rules):
    assert complete_resource_rules({"status": status}) == rules
