"""Bad input gets the API server's 4xx Status, never a 5xx or a hang, and never corrupts stored objects."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdebug_emulator.status import resource_not_found

PODS = "/api/v1/namespaces/default/pods"
EPHEMERAL = PODS + "/target/ephemeralcontainers"
PATCH_TYPES = [
    "application/strategic-merge-patch+json",
    "application/merge-patch+json",
    "application/json-patch+json",
]


@pytest.fixture
def target(emulator, make_pod):
    pod = emulator.apply(make_pod(name="target"))
    emulator.wait_for(lambda: emulator.get("pods", "default", "target")["status"]["phase"] == "Running")
    return pod


def _is_status(response, code, reason):
    body = response.json()
    return (response.status_code, body["kind"], body["code"], body["reason"]) == (
        code,
        "Status",
        code,
        reason,
    )


def test_malformed_json_on_create_is_400(api):
    response = api.request(
        "POST", PODS, data=b'{"kind": "Pod",', headers={"Content-Type": "application/json"}
    )
    assert _is_status(response, 400, "BadRequest")
    assert response.json()["message"].startswith("couldn't get version/kind; json parse error: ")


def test_malformed_patch_is_400(api, target):
    response = api.patch(EPHEMERAL, b'{"spec": ', content_type=PATCH_TYPES[0])
    assert _is_status(response, 400, "BadRequest")


def test_unknown_field_with_strict_validation_is_400(api, make_pod):
    pod = make_pod(name="p1")
    pod["spec"]["foo"] = 1
    response = api.post(PODS, pod, params={"fieldValidation": "Strict"})
    assert _is_status(response, 400, "BadRequest")
    assert response.json()["message"] == 'strict decoding error: unknown field "spec.foo"'


def test_unknown_nested_fields_are_all_named(api, make_pod):
    pod = make_pod(name="p1")
    pod["spec"]["containers"][0]["bogus"] = True
    pod["metadata"]["colour"] = "red"
    response = api.post(PODS, pod, params={"fieldValidation": "Strict"})
    assert response.json()["message"] == (
        'strict decoding error: unknown field "metadata.colour", unknown field "spec.containers[0].bogus"'
    )


def test_unknown_field_without_strict_is_a_warning(api, make_pod):
    pod = make_pod(name="p1")
    pod["spec"]["foo"] = 1
    response = api.post(PODS, pod)
    assert response.status_code == 201
    assert response.headers["Warning"] == '299 - "unknown field \\"spec.foo\\""'


def test_unknown_field_strict_on_patch_is_400_and_changes_nothing(api, emulator, target):
    before = emulator.get("pods", "default", "target")
    patch = {"spec": {"ephemeralContainers": [{"name": "d", "image": "busybox:1.36", "colour": "red"}]}}
    response = api.patch(EPHEMERAL, patch, params={"fieldValidation": "Strict"})
    assert (
        response.json()["message"]
        == 'strict decoding error: unknown field "spec.ephemeralContainers[0].colour"'
    )
    assert emulator.get("pods", "default", "target") == before


def test_wrong_content_type_on_create_is_415(api, make_pod):
    response = api.request(
        "POST", PODS, data=json.dumps(make_pod(name="p1")), headers={"Content-Type": "text/plain"}
    )
    assert _is_status(response, 415, "UnsupportedMediaType")


def test_wrong_content_type_on_patch_is_415(api, target):
    response = api.patch(EPHEMERAL, {"spec": {}}, content_type="text/plain")
    assert _is_status(response, 415, "UnsupportedMediaType")


def test_body_over_three_mebibytes_is_413(api, target):
    body = b'{"spec": {"x": "' + b"a" * (3 * 1024 * 1024) + b'"}}'
    response = api.patch(EPHEMERAL, body)
    assert _is_status(response, 413, "RequestEntityTooLarge")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/default/widgets",
        "/api/v2/pods",
        "/apis/apps/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/pods/x/y/z",
        "/nothing/here",
        "/api/v1/namespaces/default/pods/x/shell",
    ],
    ids=[
        "unknown-resource",
        "unknown-version",
        "pods-in-apps",
        "too-deep",
        "unknown-prefix",
        "unknown-subresource",
    ],
)
def test_unknown_urls_are_404_with_empty_details(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response.json() == resource_not_found()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", PODS),
        ("DELETE", "/api/v1/nodes/kdebug-node"),
        ("POST", PODS + "/x"),
        ("DELETE", PODS + "/x/ephemeralcontainers"),
        ("PATCH", "/api/v1/namespaces/default"),
    ],
    ids=["put-collection", "delete-node", "post-item", "delete-ephemeral", "patch-namespace"],
)
def test_unsupported_methods_are_405(api, method, path):
    response = api.request(method, path, data=b"{}", headers={"Content-Type": "application/json"})
    assert _is_status(response, 405, "MethodNotAllowed")


def test_bad_label_selector_is_400(api):
    response = api.get(PODS, params={"labelSelector": "a in (b"})
    assert _is_status(response, 400, "BadRequest")


def test_wrongly_typed_container_field_is_400(api, target):
    response = api.patch(EPHEMERAL, {"spec": {"ephemeralContainers": [{"name": 5, "image": "busybox:1.36"}]}})
    assert _is_status(response, 400, "BadRequest")


# --- fuzz -----------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
_container = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["app", "dbg", "debugger-x", ""]), _json_values)},
    optional={
        "image": st.one_of(st.just("busybox:1.36"), _json_values),
        "targetContainerName": st.one_of(st.sampled_from(["app", "nope"]), _json_values),
        "command": st.one_of(st.just(["sh"]), _json_values),
        "stdin": _json_values,
        "ports": _json_values,
        "securityContext": _json_values,
        "$patch": st.sampled_from(["delete", "replace", "merge", "bogus"]),
    },
)
_smp = st.fixed_dictionaries(
    {
        "spec": st.fixed_dictionaries(
            {"ephemeralContainers": st.one_of(st.lists(_container, max_size=3), _json_values)},
            optional={
                "$setElementOrder/ephemeralContainers": st.lists(
                    st.fixed_dictionaries({"name": st.sampled_from(["app", "dbg", "x"])}), max_size=3
                ),
                "containers": _json_values,
            },
        )
    }
)
_json_patch = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "remove", "replace", "test", "move", "copy", "bogus"]),
            "path": st.sampled_from(
                [
                    "/spec/ephemeralContainers",
                    "/spec/ephemeralContainers/-",
                    "/metadata/name",
                    "/spec/ephemeralContainers/0",
                    "",
                    "/x~",
                    "/spec/containers/9",
                ]
            ),
        },
        optional={
            "value": st.one_of(st.lists(_container, max_size=2), _container, _json_values),
            "from": st.sampled_from(["/spec/containers/0", "/nope"]),
        },
    ),
    max_size=3,
)
_bodies = st.one_of(
    st.binary(max_size=64),
    _json_values.map(lambda v: json.dumps(v).encode()),
    _smp.map(lambda v: json.dumps(v).encode()),
    _json_patch.map(lambda v: json.dumps(v).encode()),
    _smp.map(lambda v: json.dumps(v).encode()[: len(json.dumps(v)) // 2]),
)
_content_types = st.one_of(
    st.sampled_from([*PATCH_TYPES, "application/json", "application/apply-patch+yaml", ""]),
    # header-legal characters only: others never reach an HTTP handler
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, content_type=_content_types)
def test_fuzzed_ephemeral_patches_get_4xx_or_200_and_never_corrupt_the_pod(
    api, emulator, target, body, content_type
):
    before = _content(emulator.get("pods", "default", "target"))
    try:
        response = api.request(
            "PATCH", EPHEMERAL, data=body, headers={"Content-Type": content_type}, timeout=20
        )
    except ValueError:  # a header value the HTTP client itself refuses to send
        return
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert response.json()["kind"] == "Pod"
        return
    assert 400 <= response.status_code < 500
    assert response.json()["kind"] == "Status"
    assert _content(emulator.get("pods", "default", "target")) == before


def _content(pod):
    """What a client may change: the runtime updates status (and so resourceVersion) on its own."""
    meta = {k: v for k, v in pod["metadata"].items() if k != "resourceVersion"}
    return meta, pod["spec"]
