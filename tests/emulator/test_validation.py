"""Pod validation as the API server words it: create, and updates through pods/ephemeralcontainers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdebug_emulator import status
from kdebug_emulator.validation import (
    DNS1123_LABEL_MESSAGE,
    DNS1123_SUBDOMAIN_MESSAGE,
    drop_non_ephemeral_changes,
    validate_ephemeral_update,
    validate_new_pod,
)
from tests.fixtures.pods import build_pod, container


def make_pod(
    containers: list[dict[str, Any]] | None = None,
    ephemeral: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return build_pod(
        name="web",
        namespace="lab",
        containers=containers or [container("app", "registry.test/app:1")],
        ephemeral_containers=ephemeral,
        spec_extra=spec,
    )


def debugger(name: str = "debugger-abcde", **fields: Any) -> dict[str, Any]:
    container = {
        "name": name,
        "image": "busybox:1.36",
        "targetContainerName": "app",
        "terminationMessagePolicy": "File",
        "resources": {},
    }
    container.update(fields)
    return container


def add_debugger(old: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(old)
    new["spec"].setdefault("ephemeralContainers", []).append(container)
    return new


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


FORBIDDEN = "Forbidden: cannot be set for an Ephemeral Container"


def test_kubectl_debugger_is_valid() -> None:
    old = make_pod()
    assert validate_ephemeral_update(old, add_debugger(old, debugger())) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"ports": [{"containerPort": 80}]},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].ports", FORBIDDEN),
            id="ports",
        ),
        pytest.param(
            {"livenessProbe": {"exec": {"command": ["true"]}}},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].livenessProbe", FORBIDDEN),
            id="livenessProbe",
        ),
        pytest.param(
            {"readinessProbe": {"exec": {"command": ["true"]}}},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].readinessProbe", FORBIDDEN),
            id="readinessProbe",
        ),
        pytest.param(
            {"startupProbe": {"exec": {"command": ["true"]}}},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].startupProbe", FORBIDDEN),
            id="startupProbe",
        ),
        pytest.param(
            {"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].lifecycle", FORBIDDEN),
            id="lifecycle",
        ),
        pytest.param(
            {"resources": {"limits": {"cpu": "1"}}},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].resources", FORBIDDEN),
            id="non-empty resources",
        ),
        pytest.param(
            {"resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].resizePolicy", FORBIDDEN),
            id="resizePolicy",
        ),
        pytest.param(
            {"restartPolicy": "Always"},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].restartPolicy", FORBIDDEN),
            id="restartPolicy",
        ),
        pytest.param(
            {"volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "x"}]},
            cause("FieldValueForbidden", "spec.ephemeralContainers[0].volumeMounts[0].subPath", FORBIDDEN),
            id="volumeMount subPath",
        ),
        pytest.param(
            {"targetContainerName": "nope"},
            cause(
                "FieldValueNotFound", "spec.ephemeralContainers[0].targetContainerName", 'Not found: "nope"'
            ),
            id="unknown target",
        ),
        pytest.param(
            {"name": "app"},
            cause("FieldValueDuplicate", "spec.ephemeralContainers[0].name", 'Duplicate value: "app"'),
            id="name of a regular container",
        ),
        pytest.param(
            {"name": ""},
            cause("FieldValueRequired", "spec.ephemeralContainers[0].name", "Required value"),
            id="missing name",
        ),
        pytest.param(
            {"name": "Debug_Me"},
            cause(
                "FieldValueInvalid",
                "spec.ephemeralContainers[0].name",
                f'Invalid value: "Debug_Me": {DNS1123_LABEL_MESSAGE}',
            ),
            id="name not a DNS label",
        ),
        pytest.param(
            {"image": ""},
            cause("FieldValueRequired", "spec.ephemeralContainers[0].image", "Required value"),
            id="missing image",
        ),
        pytest.param(
            {"terminationMessagePolicy": "Sometimes"},
            cause(
                "FieldValueNotSupported",
                "spec.ephemeralContainers[0].terminationMessagePolicy",
                'Unsupported value: "Sometimes": supported values: "File", "FallbackToLogsOnError"',
            ),
            id="terminationMessagePolicy enum",
        ),
        pytest.param(
            {"imagePullPolicy": "Maybe"},
            cause(
                "FieldValueNotSupported",
                "spec.ephemeralContainers[0].imagePullPolicy",
                'Unsupported value: "Maybe": supported values: "Always", "IfNotPresent", "Never"',
            ),
            id="imagePullPolicy enum",
        ),
        pytest.param(
            {"env": [{"name": "A=B", "value": "1"}]},
            cause(
                "FieldValueInvalid",
                "spec.ephemeralContainers[0].env[0].name",
                'Invalid value: "A=B": a valid environment variable name must consist only of printable '
                "ASCII characters other than '='",
            ),
            id="env name",
        ),
    ],
)
def test_ephemeral_container_rule(fields: dict[str, Any], expected: dict[str, str]) -> None:
    old = make_pod(volumes=[{"name": "data", "emptyDir": {}}])
    assert validate_ephemeral_update(old, add_debugger(old, debugger(**fields))) == [expected]


def test_second_debugger_with_same_name_is_duplicate_at_its_index() -> None:
    old = make_pod(ephemeral=[debugger("debugger-abcde")])
    causes = validate_ephemeral_update(old, add_debugger(old, debugger("debugger-abcde")))
    assert causes == [
        cause("FieldValueDuplicate", "spec.ephemeralContainers[1].name", 'Duplicate value: "debugger-abcde"')
    ]


def test_target_may_be_an_init_container() -> None:
    old = make_pod(initContainers=[{"name": "setup", "image": "busybox"}])
    assert validate_ephemeral_update(old, add_debugger(old, debugger(targetContainerName="setup"))) == []


def test_removing_an_ephemeral_container_is_forbidden() -> None:
    old = make_pod(ephemeral=[debugger("debugger-abcde")])
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = []
    assert validate_ephemeral_update(old, new) == [
        cause(
            "FieldValueForbidden",
            "spec.ephemeralContainers",
            'Forbidden: existing ephemeral containers "debugger-abcde" may not be removed\n',
        )
    ]


def test_changing_an_ephemeral_container_is_forbidden_with_a_diff() -> None:
    old = make_pod(ephemeral=[debugger("debugger-abcde")])
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"][0]["image"] = "alpine"
    [found] = validate_ephemeral_update(old, new)
    assert (found["reason"], found["field"]) == ("FieldValueForbidden", "spec.ephemeralContainers")
    head, diff = found["message"].split("\n", 1)
    assert head == 'Forbidden: existing ephemeral containers "debugger-abcde" may not be changed'
    assert '- \timage: "busybox:1.36",' in diff.splitlines()
    assert '+ \timage: "alpine",' in diff.splitlines()


def test_static_pod_refuses_ephemeral_containers() -> None:
    old = make_pod()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    causes = validate_ephemeral_update(old, add_debugger(old, debugger(ports=[{"containerPort": 1}])))
    assert causes == [
        cause("FieldValueForbidden", "[]", "Forbidden: static pods do not support ephemeral containers")
    ]
    assert status.invalid("Pod", "web", causes)["message"] == (
        'Pod "web" is invalid: []: Forbidden: static pods do not support ephemeral containers'
    )


def test_changes_outside_ephemeral_containers_are_dropped_not_refused() -> None:
    old = make_pod()
    new = add_debugger(old, debugger())
    new["spec"]["containers"][0]["image"] = "evil:1"
    new["metadata"]["labels"] = {"sneaky": "yes"}
    assert validate_ephemeral_update(old, new) == []
    kept = drop_non_ephemeral_changes(old, new)
    assert kept == add_debugger(old, debugger())


def test_several_errors_join_like_the_api_server() -> None:
    old = make_pod()
    causes = validate_ephemeral_update(
        old, add_debugger(old, debugger(targetContainerName="nope", ports=[{}]))
    )
    message = status.invalid("Pod", "web", causes)["message"]
    assert message == (
        'Pod "web" is invalid: [spec.ephemeralContainers[0].targetContainerName: Not found: "nope", '
        "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container]"
    )


# ---------------------------------------------------------------- create


def test_valid_new_pod() -> None:
    assert validate_new_pod(make_pod()) == []


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(
            {"metadata": {}, "spec": {"containers": [{"name": "a", "image": "a"}]}},
            [
                cause(
                    "FieldValueRequired", "metadata.name", "Required value: name or generateName is required"
                )
            ],
            id="missing name",
        ),
        pytest.param(
            {"metadata": {"name": "Web_1"}, "spec": {"containers": [{"name": "a", "image": "a"}]}},
            [
                cause(
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "Web_1": {DNS1123_SUBDOMAIN_MESSAGE}',
                )
            ],
            id="name not a DNS subdomain",
        ),
        pytest.param(
            {"metadata": {"name": "web"}, "spec": {"containers": []}},
            [cause("FieldValueRequired", "spec.containers", "Required value")],
            id="no containers",
        ),
        pytest.param(
            {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "a"}]}},
            [cause("FieldValueRequired", "spec.containers[0].image", "Required value")],
            id="container without image",
        ),
        pytest.param(
            {"metadata": {"name": "web"}, "spec": {"containers": [{"image": "a"}]}},
            [cause("FieldValueRequired", "spec.containers[0].name", "Required value")],
            id="container without name",
        ),
        pytest.param(
            {
                "metadata": {"name": "web"},
                "spec": {"containers": [{"name": "a", "image": "a"}, {"name": "a", "image": "b"}]},
            },
            [cause("FieldValueDuplicate", "spec.containers[1].name", 'Duplicate value: "a"')],
            id="duplicate container names",
        ),
        pytest.param(
            {
                "metadata": {"name": "web"},
                "spec": {
                    "containers": [{"name": "a", "image": "a"}],
                    "initContainers": [{"name": "a", "image": "b"}],
                },
            },
            [cause("FieldValueDuplicate", "spec.initContainers[0].name", 'Duplicate value: "a"')],
            id="init container reuses a name",
        ),
        pytest.param(
            {
                "metadata": {"name": "web"},
                "spec": {
                    "containers": [{"name": "a", "image": "a"}],
                    "ephemeralContainers": [debugger(targetContainerName="a")],
                },
            },
            [cause("FieldValueForbidden", "spec.ephemeralContainers", "Forbidden: cannot be set on create")],
            id="ephemeral containers on create",
        ),
    ],
)
def test_new_pod_rule(pod: dict[str, Any], expected: list[dict[str, str]]) -> None:
    assert validate_new_pod(pod) == expected


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param({}, id="empty object"),
        pytest.param({"metadata": 5, "spec": "x"}, id="wrong types"),
        pytest.param(
            {"metadata": {"name": "w"}, "spec": {"containers": [5, None]}}, id="non-object containers"
        ),
    ],
)
def test_malformed_pods_give_causes_not_crashes(pod: dict[str, Any]) -> None:
    causes = validate_new_pod(pod)
    assert causes and all(set(c) == {"reason", "message", "field"} for c in causes)


# ---------------------------------------------------------------- robustness

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["a", "app", "Bad_Name", "x=y", ""]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "metadata",
                    "name",
                    "containers",
                    "initContainers",
                    "ephemeralContainers",
                    "image",
                    "targetContainerName",
                    "env",
                    "volumeMounts",
                    "volumes",
                    "mountPath",
                    "subPath",
                    "ports",
                    "annotations",
                    "imagePullPolicy",
                    "terminationMessagePolicy",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
_pods = st.dictionaries(st.sampled_from(["metadata", "spec"]), _json, max_size=2)


@settings(max_examples=300, deadline=None)
@given(old=_pods, new=_pods)
def test_validation_returns_causes_for_any_json(old: dict[str, Any], new: dict[str, Any]) -> None:
    before = copy.deepcopy((old, new))
    causes = validate_new_pod(new) + validate_ephemeral_update(old, new)
    assert all(set(c) == {"reason", "message", "field"} for c in causes)
    assert (old, new) == before
