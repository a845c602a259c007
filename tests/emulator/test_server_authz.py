"""Authorization: per-user rule tables, RBAC-shaped 403s, access reviews and self-subject reviews."""

from __future__ import annotations

import json

import pytest

from kdebug_emulator import authz

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSRR = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"


def _rules_review(namespace):
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }


def _review(verb, resource, subresource="", namespace="default"):
    attributes = {"namespace": namespace, "verb": verb, "resource": resource, "subresource": subresource}
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        ({"verbs": ["get"], "resources": ["pods"]}, authz.Attributes("get", "pods", namespace="a"), True),
        ({"verbs": ["get"], "resources": ["pods"]}, authz.Attributes("list", "pods", namespace="a"), False),
        ({"verbs": ["*"], "resources": ["pods"]}, authz.Attributes("get", "pods", "log", "a"), False),
        ({"verbs": ["*"], "resources": ["pods/*"]}, authz.Attributes("get", "pods", "log", "a"), True),
        (
            {"verbs": ["get"], "resources": ["*"], "namespaces": ["a"]},
            authz.Attributes("get", "pods", namespace="b"),
            False,
        ),
        (
            {"verbs": ["get"], "resources": ["*"], "namespaces": ["a"]},
            authz.Attributes("get", "nodes"),
            False,
        ),
        (
            {"verbs": ["get"], "resources": ["deployments"], "apiGroups": ["apps"]},
            authz.Attributes("get", "deployments", group="apps", namespace="a"),
            True,
        ),
        (
            {"verbs": ["get"], "resources": ["deployments"], "apiGroups": [""]},
            authz.Attributes("get", "deployments", group="apps", namespace="a"),
            False,
        ),
    ],
    ids=[
        "verb-match",
        "verb-mismatch",
        "subresource-needs-naming",
        "subresource-wildcard",
        "other-namespace",
        "cluster-scope-with-namespace-list",
        "group-match",
        "group-mismatch",
    ],
)
def test_rule_matching(rule, attrs, allowed):
    assert authz.is_allowed([rule], attrs) is allowed


def test_users_without_rules_may_do_everything():
    assert authz.is_allowed(None, authz.Attributes("delete", "namespaces"))


def test_set_rules_takes_effect_on_the_next_request(api, emulator):
    emulator.add_user("dana", rules=[])
    as_dana = api.as_user("dana")
    assert as_dana.get("/api/v1/namespaces/default/pods").status_code == 403
    emulator.set_rules("dana", [{"verbs": ["list"], "resources": ["pods"]}])
    assert as_dana.get("/api/v1/namespaces/default/pods").status_code == 200


def test_forbidden_body_is_rbac_shaped(api, emulator):
    emulator.add_user("erin", rules=[])
    response = api.as_user("erin").get("/apis/apps/v1/namespaces/default/deployments/shop")
    assert response.status_code == 403
    body = response.json()
    assert body["message"] == (
        'deployments.apps "shop" is forbidden: User "erin" cannot get resource "deployments" '
        'in API group "apps" '
        'in the namespace "default"'
    )
    assert body["details"] == {"name": "shop", "group": "apps", "kind": "deployments"}


@pytest.mark.parametrize(
    ("verb", "resource", "subresource", "allowed"),
    [("create", "pods", "attach", True), ("create", "pods", "exec", False), ("get", "pods", "", True)],
    ids=["attach-allowed", "exec-denied", "get-allowed"],
)
def test_access_review_answers_from_the_rule_table(api, emulator, verb, resource, subresource, allowed):
    emulator.add_user(
        "finn",
        rules=[
            {"verbs": ["create"], "resources": ["pods/attach"]},
            {"verbs": ["get"], "resources": ["pods"]},
        ],
    )
    response = api.as_user("finn").post(SSAR, _review(verb, resource, subresource))
    assert response.status_code == 201
    assert response.json()["status"]["allowed"] is allowed


def test_access_review_echoes_the_spec(api):
    review = _review("patch", "pods", "ephemeralcontainers")
    assert api.post(SSAR, review).json()["spec"] == review["spec"]


def test_access_reviews_can_be_switched_off(api, emulator):
    emulator.access_reviews_enabled = False
    response = api.post(SSAR, _review("get", "pods"))
    assert response.status_code == 404
    assert response.json()["message"] == "the server could not find the requested resource"
    assert "authorization.k8s.io" not in {g["name"] for g in api.get("/apis").json()["groups"]}


def test_rules_review_of_an_unrestricted_user_is_cluster_admins_wildcard(api):
    response = api.post(SSRR, _rules_review("default"))
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["spec"], body["status"]["incomplete"]) == (
        "SelfSubjectRulesReview",
        {"namespace": "default"},
        False,
    )
    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in body["status"]["resourceRules"]


def test_rules_review_lists_the_rules_that_apply_in_the_namespace(api, emulator):
    emulator.add_user(
        "hana",
        rules=[
            {"verbs": ["get"], "resources": ["pods"], "namespaces": ["team"]},
            {"verbs": ["create"], "resources": ["pods/attach"], "apiGroups": [""]},
        ],
    )
    rules = api.as_user("hana").post(SSRR, _rules_review("other")).json()["status"]["resourceRules"]
    assert {"verbs": ["create"], "apiGroups": [""], "resources": ["pods/attach"]} in rules
    assert not any(rule["resources"] == ["pods"] for rule in rules)  # that one is for namespace team
    team = api.as_user("hana").post(SSRR, _rules_review("team")).json()["status"]["resourceRules"]
    assert {"verbs": ["get"], "apiGroups": ["*"], "resources": ["pods"]} in team


def test_rules_reviews_go_with_access_reviews_when_switched_off(api, emulator):
    emulator.access_reviews_enabled = False
    assert api.post(SSRR, _rules_review("default")).status_code == 404


def test_self_subject_review_reports_user_uid_and_groups(api, emulator):
    user = emulator.add_user("gus", groups=("team-a",))
    body = api.as_user("gus").post(
        SSR, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    assert body.status_code == 201
    assert body.json()["status"]["userInfo"] == {
        "username": "gus",
        "groups": ["team-a", "system:authenticated"],
        "uid": user.uid,
    }


def test_protobuf_access_review_is_decoded():
    # The envelope kubectl sends: magic, Unknown{raw: SelfSubjectAccessReview{spec{resourceAttributes}}}.
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    attributes = field(1, b"demo") + field(2, b"create") + field(5, b"pods") + field(6, b"attach")
    review = field(2, field(1, attributes))
    body = authz.PROTOBUF_MAGIC + field(2, review)
    decoded = authz.decode_access_review_protobuf(body)
    assert decoded["spec"]["resourceAttributes"] == {
        "namespace": "demo",
        "verb": "create",
        "resource": "pods",
        "subresource": "attach",
    }


def test_truncated_protobuf_is_refused():
    with pytest.raises(ValueError, match="truncated"):
        authz.decode_access_review_protobuf(authz.PROTOBUF_MAGIC + b"\x12\x50abc")


STREAM_POD = "/api/v1/namespaces/default/pods/target"


@pytest.fixture
def running_target(emulator, make_pod):
    emulator.apply(make_pod(name="target"))
    emulator.wait_for(lambda: emulator.get("pods", "default", "target")["status"]["phase"] == "Running")


def _websocket_upgrade(emulator, user, kind):
    import ssl

    import websocket

    query = "container=app&stdout=true" + ("&command=true" if kind == "exec" else "")
    return websocket.create_connection(
        emulator.url.replace("https://", "wss://") + f"{STREAM_POD}/{kind}?{query}",
        header=[f"Authorization: Bearer {emulator.token(user)}"],
        subprotocols=["v5.channel.k8s.io"],
        sslopt={"ca_certs": str(emulator.ca_path), "cert_reqs": ssl.CERT_REQUIRED},
        timeout=20,
    )


@pytest.mark.parametrize(
    ("kind", "granted", "missing"),
    [
        ("attach", "create", "get"),
        ("attach", "get", "create"),
        ("exec", "create", "get"),
        ("exec", "get", "create"),
    ],
    ids=["attach-without-get", "attach-without-create", "exec-without-get", "exec-without-create"],
)
def test_websocket_upgrade_needs_get_and_create(emulator, running_target, kind, granted, missing):
    import websocket

    emulator.add_user("hana", rules=[{"verbs": [granted], "resources": [f"pods/{kind}"]}])
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _websocket_upgrade(emulator, "hana", kind)
    assert refused.value.status_code == 403
    assert json.loads(refused.value.resp_body)["message"] == (
        f'pods "target" is forbidden: User "hana" cannot {missing} resource "pods/{kind}" in API group "" '
        'in the namespace "default"'
    )


@pytest.mark.parametrize("kind", ["attach", "exec"], ids=["attach", "exec"])
def test_websocket_upgrade_with_get_and_create_is_accepted(emulator, running_target, kind):
    emulator.add_user("ivan", rules=[{"verbs": ["get", "create"], "resources": [f"pods/{kind}"]}])
    ws = _websocket_upgrade(emulator, "ivan", kind)
    try:
        assert ws.getsubprotocol() == "v5.channel.k8s.io"
    finally:
        ws.close()
