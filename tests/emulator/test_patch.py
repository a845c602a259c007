"""The emulator's PATCH logic: strategic merge, merge patch, JSON patch, and the API server's refusals."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdebug_emulator.patch import PatchError, apply_patch, json_patch, merge_patch, strategic_merge
from tests.fixtures.pods import build_pod, container

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
CAPTURES = Path("/work/shared/k8s-captures/kubectl-requests/requests.jsonl")


def make_pod(**spec: Any) -> dict[str, Any]:
    return build_pod(
        name="web",
        namespace="lab",
        labels={"app": "web", "tier": "front"},
        containers=[container("app", "registry.test/app:1")],
        spec_extra=spec,
    )


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


# ---------------------------------------------------------------- strategic merge


def test_strategic_merge_adds_first_ephemeral_container_as_kubectl_sends_it() -> None:
    debugger = {"name": "debugger-abcde", "image": "busybox", "targetContainerName": "app", "resources": {}}
    patched = strategic_merge(make_pod(), {"spec": {"ephemeralContainers": [debugger]}})
    assert patched["spec"] == {
        "containers": [{"name": "app", "image": "registry.test/app:1"}],
        "ephemeralContainers": [debugger],
    }


def test_strategic_merge_merges_containers_by_name() -> None:
    pod = make_pod(containers=[{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}])
    patched = strategic_merge(pod, {"spec": {"containers": [{"name": "side", "image": "s:2"}]}})
    assert patched["spec"]["containers"] == [
        {"name": "app", "image": "a:1"},
        {"name": "side", "image": "s:2"},
    ]


def test_strategic_merge_puts_new_list_items_first_without_set_element_order() -> None:
    # upstream's normalizeElementOrder puts items unknown to the live list before server-only ones
    pod = make_pod(containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    patched = strategic_merge(pod, {"spec": {"containers": [{"name": "c", "image": "c"}]}})
    assert names(patched["spec"]["containers"]) == ["c", "a", "b"]


@pytest.mark.parametrize(
    ("path", "key", "original", "patch_items", "expected"),
    [
        pytest.param(
            "env",
            "name",
            [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            [{"name": "B", "value": "3"}],
            [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}],
            id="env by name",
        ),
        pytest.param(
            "ports",
            "containerPort",
            [{"containerPort": 80, "name": "http"}],
            [{"containerPort": 80, "protocol": "TCP"}],
            [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
            id="ports by containerPort",
        ),
        pytest.param(
            "volumeMounts",
            "mountPath",
            [{"mountPath": "/data", "name": "v1"}],
            [{"mountPath": "/data", "readOnly": True}],
            [{"mountPath": "/data", "name": "v1", "readOnly": True}],
            id="volumeMounts by mountPath",
        ),
    ],
)
def test_strategic_merge_merges_container_lists_by_their_merge_key(
    path: str, key: str, original: list, patch_items: list, expected: list
) -> None:
    pod = make_pod(containers=[{"name": "app", "image": "a", path: original}])
    patched = strategic_merge(pod, {"spec": {"containers": [{"name": "app", path: patch_items}]}})
    assert patched["spec"]["containers"][0][path] == expected


@pytest.mark.parametrize(
    ("field", "original", "patch_items", "expected"),
    [
        pytest.param(
            "volumes",
            [{"name": "a", "emptyDir": {}}],
            [{"name": "a", "emptyDir": {"medium": "Memory"}}],
            [{"name": "a", "emptyDir": {"medium": "Memory"}}],
            id="volumes by name",
        ),
        pytest.param(
            "imagePullSecrets",
            [{"name": "one"}],
            [{"name": "one"}],
            [{"name": "one"}],
            id="imagePullSecrets by name",
        ),
        pytest.param(
            "tolerations",
            [{"key": "a", "operator": "Exists"}],
            [{"key": "b", "operator": "Exists"}],
            [{"key": "b", "operator": "Exists"}],
            id="tolerations replaced (no merge key)",
        ),
    ],
)
def test_strategic_merge_pod_spec_lists(
    field: str, original: list, patch_items: list, expected: list
) -> None:
    patched = strategic_merge(make_pod(**{field: original}), {"spec": {field: patch_items}})
    assert patched["spec"][field] == expected


def test_strategic_merge_merges_owner_references_by_uid() -> None:
    pod = make_pod()
    pod["metadata"]["ownerReferences"] = [{"uid": "u1", "name": "rs-1", "kind": "ReplicaSet"}]
    patch = {"metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]}}
    patched = strategic_merge(pod, patch)
    expected = [{"uid": "u1", "name": "rs-1", "kind": "ReplicaSet", "controller": True}]
    assert patched["metadata"]["ownerReferences"] == expected


def test_strategic_merge_null_deletes_a_key() -> None:
    patched = strategic_merge(make_pod(), {"metadata": {"labels": {"tier": None, "new": "x"}}})
    assert patched["metadata"]["labels"] == {"app": "web", "new": "x"}


def test_strategic_merge_drops_nulls_in_a_new_subtree() -> None:
    patched = strategic_merge(make_pod(), {"metadata": {"annotations": {"a": "1", "b": None}}})
    assert patched["metadata"]["annotations"] == {"a": "1"}


def test_strategic_merge_replace_directive_in_a_map() -> None:
    patched = strategic_merge(make_pod(), {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert patched["metadata"]["labels"] == {"only": "this"}


def test_strategic_merge_delete_directive_in_a_map() -> None:
    patched = strategic_merge(make_pod(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert patched["metadata"]["labels"] == {}


def test_strategic_merge_delete_directive_in_a_list_element() -> None:
    pod = make_pod(containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    patched = strategic_merge(pod, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})
    assert patched["spec"]["containers"] == [{"name": "b", "image": "b"}]


def test_strategic_merge_replace_directive_in_a_list() -> None:
    pod = make_pod(containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c"}]}}
    patched = strategic_merge(pod, patch)
    assert patched["spec"]["containers"] == [{"name": "c", "image": "c"}]


def test_strategic_merge_set_element_order_orders_merged_list() -> None:
    pod = make_pod(containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
            "containers": [{"name": "c", "image": "c"}],
        }
    }
    patched = strategic_merge(pod, patch)
    assert names(patched["spec"]["containers"]) == ["b", "c", "a"]


def test_strategic_merge_set_element_order_keeps_unnamed_server_items_by_live_order() -> None:
    pod = make_pod(
        containers=[{"name": "a", "image": "a"}, {"name": "x", "image": "x"}, {"name": "b", "image": "b"}]
    )
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}
    patched = strategic_merge(pod, patch)
    # upstream's mergeSortedSlice: "x" (live index 1) goes before "b" (live index 2), the head of the order
    assert names(patched["spec"]["containers"]) == ["x", "b", "a"]


def test_strategic_merge_retain_keys_clears_other_keys() -> None:
    pod = make_pod(volumes=[{"name": "v", "hostPath": {"path": "/x"}}])
    patch = {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}]}}
    patched = strategic_merge(pod, patch)
    assert patched["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]


def test_strategic_merge_delete_from_primitive_list() -> None:
    pod = make_pod()
    pod["metadata"]["finalizers"] = ["a/one", "b/two", "c/three"]
    patched = strategic_merge(pod, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b/two"]}})
    assert patched["metadata"]["finalizers"] == ["a/one", "c/three"]


def test_strategic_merge_primitive_merge_list_deduplicates() -> None:
    pod = make_pod()
    pod["metadata"]["finalizers"] = ["a", "b"]
    patched = strategic_merge(pod, {"metadata": {"finalizers": ["b", "c"]}})
    assert sorted(patched["metadata"]["finalizers"]) == ["a", "b", "c"]
    assert len(patched["metadata"]["finalizers"]) == 3


def test_strategic_merge_does_not_mutate_its_inputs() -> None:
    pod = make_pod()
    patch = {
        "spec": {"containers": [{"name": "app", "image": "new"}]},
        "metadata": {"labels": {"$patch": "delete"}},
    }
    pod_before, patch_before = copy.deepcopy(pod), copy.deepcopy(patch)
    strategic_merge(pod, patch)
    assert (pod, patch) == (pod_before, patch_before)


def captured_patch_bodies() -> list[dict[str, Any]]:
    bodies = []
    for line in CAPTURES.read_text().splitlines():
        request = json.loads(line)
        if request["method"] == "PATCH":
            bodies.append(request["body"])
    return bodies


@pytest.mark.skipif(not CAPTURES.exists(), reason="kubectl captures not present")
def test_every_captured_kubectl_patch_appends_and_keeps_existing_debuggers() -> None:
    pod = make_pod()
    expected: list[dict[str, Any]] = []
    for body in captured_patch_bodies():
        new = body["spec"]["ephemeralContainers"]
        pod = apply_patch(STRATEGIC, pod, json.dumps(body).encode())
        expected = expected + new
        assert pod["spec"]["ephemeralContainers"] == expected
    assert len(expected) == 9
    assert pod["spec"]["containers"] == make_pod()["spec"]["containers"]


# ---------------------------------------------------------------- merge patch (RFC 7386)


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [
        pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace value"),
        pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add key"),
        pytest.param({"a": "b"}, {"a": None}, {}, id="null removes"),
        pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="null removes only that key"),
        pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="list replaced by scalar"),
        pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="scalar replaced by list"),
        pytest.param({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}, id="nested"),
        pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="lists are replaced whole"),
        pytest.param({"a": "foo"}, "bar", "bar", id="non-object patch replaces"),
        pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="nested null in new object"),
    ],
)
def test_merge_patch_follows_rfc_7386(original: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(original, patch) == expected


def test_merge_patch_media_type_replaces_lists() -> None:
    body = json.dumps({"spec": {"containers": [{"name": "x", "image": "x"}]}}).encode()
    patched = apply_patch(MERGE, make_pod(), body)
    assert patched["spec"]["containers"] == [{"name": "x", "image": "x"}]


# ---------------------------------------------------------------- JSON patch (RFC 6902)


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        pytest.param(
            [{"op": "add", "path": "/b", "value": 1}], {"a": {"x": [1, 2]}, "b": 1}, id="add member"
        ),
        pytest.param(
            [{"op": "add", "path": "/a/x/1", "value": 9}], {"a": {"x": [1, 9, 2]}}, id="add inserts in array"
        ),
        pytest.param(
            [{"op": "add", "path": "/a/x/-", "value": 3}], {"a": {"x": [1, 2, 3]}}, id="add appends with -"
        ),
        pytest.param([{"op": "remove", "path": "/a/x/0"}], {"a": {"x": [2]}}, id="remove array element"),
        pytest.param([{"op": "replace", "path": "/a", "value": 5}], {"a": 5}, id="replace"),
        pytest.param([{"op": "move", "from": "/a/x", "path": "/y"}], {"a": {}, "y": [1, 2]}, id="move"),
        pytest.param(
            [{"op": "copy", "from": "/a/x", "path": "/y"}], {"a": {"x": [1, 2]}, "y": [1, 2]}, id="copy"
        ),
        pytest.param([{"op": "test", "path": "/a/x/1", "value": 2}], {"a": {"x": [1, 2]}}, id="test passes"),
        pytest.param(
            [{"op": "add", "path": "/a~1b~0c", "value": True}],
            {"a": {"x": [1, 2]}, "a/b~c": True},
            id="escaped pointer",
        ),
    ],
)
def test_json_patch_operations(ops: list, expected: dict) -> None:
    assert json_patch({"a": {"x": [1, 2]}}, ops) == expected


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param([{"op": "test", "path": "/a", "value": 2}], id="failed test"),
        pytest.param([{"op": "remove", "path": "/nope"}], id="remove missing"),
        pytest.param([{"op": "replace", "path": "/nope", "value": 1}], id="replace missing"),
        pytest.param([{"op": "add", "path": "/no/such", "value": 1}], id="add under missing parent"),
        pytest.param([{"op": "add", "path": "/x/5", "value": 1}], id="index out of range"),
        pytest.param([{"op": "jump", "path": "/a"}], id="unknown op"),
        pytest.param([{"op": "add", "path": "a", "value": 1}], id="path without slash"),
    ],
)
def test_json_patch_failures_get_the_servers_generic_422(ops: list) -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(JSON_PATCH, {"a": 1, "x": []}, json.dumps(ops).encode())
    assert caught.value.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {},
        "code": 422,
    }


def test_json_patch_failure_leaves_original_untouched() -> None:
    original = {"a": {"b": 1}}
    ops = [{"op": "add", "path": "/a/c", "value": 2}, {"op": "test", "path": "/a/b", "value": 9}]
    with pytest.raises(PatchError):
        json_patch(original, ops)
    assert original == {"a": {"b": 1}}


# ---------------------------------------------------------------- media types and bad bodies


def bad_request(message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400,
    }


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        pytest.param(
            STRATEGIC,
            b"{x",
            "invalid character 'x' looking for beginning of object key string",
            id="smp syntax",
        ),
        pytest.param(STRATEGIC, b"", "unexpected end of JSON input", id="smp empty"),
        pytest.param(
            STRATEGIC,
            b"[]",
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
            id="smp array",
        ),
        pytest.param(
            STRATEGIC, b'{"a":1}}', "invalid character '}' after top-level value", id="smp trailing"
        ),
        pytest.param(
            MERGE, b"nul", "error decoding patch: unexpected end of JSON input", id="merge truncated"
        ),
        pytest.param(MERGE, b"null", "Invalid JSON Patch", id="merge null"),
        pytest.param(
            MERGE,
            b'"x"',
            "error decoding patch: json: cannot unmarshal string into Go value of type "
            "map[string]interface {}",
            id="merge string",
        ),
        pytest.param(
            JSON_PATCH,
            b"{}",
            "error decoding patch: json: cannot unmarshal object into Go value of type "
            "[]handlers.jsonPatchOp",
            id="json patch object",
        ),
        pytest.param(
            JSON_PATCH,
            b'[{"op": 1}]',
            "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.op "
            "of type string",
            id="json patch op type",
        ),
        pytest.param(
            JSON_PATCH,
            b"[tru]",
            "error decoding patch: invalid character ']' in literal true (expecting 'e')",
            id="literal",
        ),
    ],
)
def test_undecodable_bodies_get_the_servers_400(content_type: str, body: bytes, message: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(content_type, make_pod(), body)
    assert caught.value.status == bad_request(message)


def test_unknown_media_type_is_415() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch("application/yaml", make_pod(), b"{}")
    assert caught.value.status["code"] == 415
    assert caught.value.status["reason"] == "UnsupportedMediaType"
    assert caught.value.status["message"].startswith("the body of the request was in an unknown format")


def test_media_type_parameters_are_ignored() -> None:
    patched = apply_patch(f"{MERGE}; charset=utf-8", make_pod(), b'{"metadata":{"labels":null}}')
    assert "labels" not in patched["metadata"]


def test_patch_that_breaks_the_object_shape_is_invalid() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(MERGE, make_pod(), b'{"spec": 5}')
    assert caught.value.status["code"] == 422
    assert caught.value.status["details"]["causes"][0]["field"] == "patch"


def test_bad_set_element_order_key_is_400() -> None:
    body = b'{"spec": {"$setElementOrder": []}}'
    with pytest.raises(PatchError) as caught:
        apply_patch(STRATEGIC, make_pod(), body)
    assert caught.value.status == bad_request("invalid patch format of setElementOrder list")


# ---------------------------------------------------------------- property: only PatchError, never mutation

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="ab$/-~01", max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "a",
                    "spec",
                    "metadata",
                    "containers",
                    "name",
                    "$patch",
                    "op",
                    "path",
                    "value",
                    "from",
                    "$setElementOrder/containers",
                    "$retainKeys",
                    "labels",
                    "ephemeralContainers",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
media_types = st.sampled_from([STRATEGIC, MERGE, JSON_PATCH, "text/plain"])


def assert_only_patch_error(content_type: str, original: dict, body: bytes) -> None:
    before = copy.deepcopy(original)
    try:
        result = apply_patch(content_type, original, body)
    except PatchError as err:
        assert isinstance(err.status, dict) and err.status["kind"] == "Status"
    else:
        assert isinstance(result, dict)
    assert original == before


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=media_types, patch=json_values)
def test_apply_patch_raises_only_patch_error_for_any_json(content_type: str, patch: Any) -> None:
    assert_only_patch_error(content_type, make_pod(), json.dumps(patch).encode())


@settings(max_examples=300, deadline=None)
@given(content_type=media_types, body=st.binary(max_size=40))
def test_apply_patch_raises_only_patch_error_for_any_bytes(content_type: str, body: bytes) -> None:
    assert_only_patch_error(content_type, make_pod(), body)


@settings(max_examples=200, deadline=None)
@given(
    original=st.dictionaries(st.sampled_from(["spec", "metadata", "a"]), json_values, max_size=3),
    patch=json_values,
)
def test_strategic_merge_on_arbitrary_documents_raises_only_patch_error(original: dict, patch: Any) -> None:
    assert_only_patch_error(STRATEGIC, original, json.dumps(patch).encode())


def test_pure_modules_load_no_client_server_or_cli_libraries() -> None:
    code = (
        "import sys, kdebug_emulator.patch, kdebug_emulator.validation, kdebug.security.podsecurity;"
        "print(sorted(m for m in ('aiohttp', 'kubernetes', 'typer', 'rich') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_strategic_merge_applies_directives_in_a_new_subtree() -> None:
    patch = {"metadata": {"annotations": {"$patch": "replace", "a": "1"}}}
    patched = strategic_merge(make_pod(), patch)
    assert patched["metadata"]["annotations"] == {"a": "1"}
