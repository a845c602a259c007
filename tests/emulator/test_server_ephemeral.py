"""pods/NAME/ephemeralcontainers: GET, the three PATCH types, PUT, conflicts, validation, admission, RBAC."""

from __future__ import annotations

import json

import pytest

EPHEMERAL = "/api/v1/namespaces/default/pods/target/ephemeralcontainers"
DEBUGGER = {
    "name": "debugger-abcde",
    "image": "busybox:1.36",
    "command": ["sh"],
    "stdin": True,
    "tty": True,
    "targetContainerName": "app",
    "terminationMessagePolicy": "File",
    "resources": {},
}


@pytest.fixture
def target(emulator, make_pod):
    pod = emulator.apply(make_pod(name="target"))
    emulator.wait_for(lambda: emulator.get("pods", "default", "target")["status"]["phase"] == "Running")
    return pod


def _ephemeral_names(pod):
    return [c["name"] for c in pod["spec"].get("ephemeralContainers", [])]


def _smp(*containers, order=None):
    spec = {"ephemeralContainers": list(containers)}
    if order:
        spec["$setElementOrder/ephemeralContainers"] = [{"name": n} for n in order]
    return {"spec": spec}


def test_get_returns_the_pod(api, target):
    body = api.get(EPHEMERAL).json()
    assert (body["kind"], body["metadata"]["name"]) == ("Pod", "target")


def test_strategic_merge_patch_adds_the_container(api, target, emulator):
    response = api.patch(EPHEMERAL, _smp(DEBUGGER))
    assert response.status_code == 200
    assert _ephemeral_names(response.json()) == ["debugger-abcde"]
    assert _ephemeral_names(emulator.get("pods", "default", "target")) == ["debugger-abcde"]


def test_patch_bumps_the_resource_version(api, target):
    before = int(api.get(EPHEMERAL).json()["metadata"]["resourceVersion"])
    after = int(api.patch(EPHEMERAL, _smp(DEBUGGER)).json()["metadata"]["resourceVersion"])
    assert after > before


def test_added_container_is_defaulted(api, target):
    container = api.patch(EPHEMERAL, _smp(DEBUGGER)).json()["spec"]["ephemeralContainers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"


def test_added_container_starts_waiting_then_runs(api, target, emulator):
    status = api.patch(EPHEMERAL, _smp(DEBUGGER)).json()["status"]["ephemeralContainerStatuses"]
    assert status[0]["state"] == {"waiting": {"reason": "ContainerCreating"}}

    def running() -> bool:
        statuses = emulator.get("pods", "default", "target")["status"]["ephemeralContainerStatuses"]
        return "running" in statuses[0]["state"]

    emulator.wait_for(running)


def test_second_patch_with_set_element_order_keeps_both(api, target):
    api.patch(EPHEMERAL, _smp(DEBUGGER))
    second = {**DEBUGGER, "name": "debugger-fghij"}
    body = api.patch(EPHEMERAL, _smp(second, order=["debugger-abcde", "debugger-fghij"])).json()
    assert _ephemeral_names(body) == ["debugger-abcde", "debugger-fghij"]


def test_merge_patch_replaces_the_list(api, target):
    response = api.patch(EPHEMERAL, _smp(DEBUGGER), content_type="application/merge-patch+json")
    assert _ephemeral_names(response.json()) == ["debugger-abcde"]


def test_json_patch_adds_the_container(api, target):
    ops = [{"op": "add", "path": "/spec/ephemeralContainers", "value": [DEBUGGER]}]
    response = api.patch(EPHEMERAL, ops, content_type="application/json-patch+json")
    assert response.status_code == 200
    assert _ephemeral_names(response.json()) == ["debugger-abcde"]


def test_put_with_the_full_pod_adds_the_container(api, target):
    pod = api.get(EPHEMERAL).json()
    pod["spec"]["ephemeralContainers"] = [DEBUGGER]
    response = api.put(EPHEMERAL, pod)
    assert response.status_code == 200
    assert _ephemeral_names(response.json()) == ["debugger-abcde"]


def test_put_with_a_stale_resource_version_is_409(api, target):
    pod = api.get(EPHEMERAL).json()
    api.patch(EPHEMERAL, _smp(DEBUGGER))
    pod["spec"]["ephemeralContainers"] = [{**DEBUGGER, "name": "other"}]
    response = api.put(EPHEMERAL, pod)
    assert response.status_code == 409
    assert response.json()["message"] == (
        'Operation cannot be fulfilled on pods "target": the object has been modified; please apply your '
        "changes to the latest version and try again"
    )


def test_changes_outside_ephemeral_containers_are_not_stored(api, target, emulator):
    patch = _smp(DEBUGGER)
    patch["metadata"] = {"labels": {"sneaky": "yes"}}
    patch["spec"]["containers"] = [{"name": "app", "image": "evil:1"}]
    api.patch(EPHEMERAL, patch)
    stored = emulator.get("pods", "default", "target")
    assert "sneaky" not in (stored["metadata"].get("labels") or {})
    assert stored["spec"]["containers"][0]["image"] == target["spec"]["containers"][0]["image"]


def test_duplicate_name_is_422(api, target):
    response = api.patch(EPHEMERAL, _smp({**DEBUGGER, "name": "app"}))
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "Invalid"
    assert (
        body["message"] == 'Pod "target" is invalid: spec.ephemeralContainers[0].name: Duplicate value: "app"'
    )


def test_unknown_target_container_is_422(api, target):
    response = api.patch(EPHEMERAL, _smp({**DEBUGGER, "targetContainerName": "nope"}))
    assert response.status_code == 422
    assert (
        response.json()["details"]["causes"][0]["field"] == "spec.ephemeralContainers[0].targetContainerName"
    )


def test_static_pod_is_refused(api, emulator, make_pod):
    emulator.apply(make_pod(name="target", annotations={"kubernetes.io/config.mirror": "abc"}))
    response = api.patch(EPHEMERAL, _smp(DEBUGGER))
    assert response.status_code == 422
    assert response.json()["message"] == (
        'Pod "target" is invalid: []: Forbidden: static pods do not support ephemeral containers'
    )


def test_rejected_patch_leaves_the_pod_unchanged(api, target, emulator):
    before = emulator.get("pods", "default", "target")
    api.patch(EPHEMERAL, _smp({**DEBUGGER, "name": "app"}))
    assert emulator.get("pods", "default", "target") == before


def test_missing_pod_is_404(api, emulator):
    response = api.patch(EPHEMERAL, _smp(DEBUGGER))
    assert response.status_code == 404
    assert response.json()["message"] == 'pods "target" not found'


def test_rbac_refusal_comes_before_validation(api, target, emulator):
    emulator.add_user("viewer", rules=[{"verbs": ["get", "list"], "resources": ["pods"]}])
    response = api.as_user("viewer").patch(EPHEMERAL, _smp({**DEBUGGER, "name": "app"}))
    assert response.status_code == 403
    assert response.json()["message"] == (
        'pods "target" is forbidden: User "viewer" cannot patch resource "pods/ephemeralcontainers" '
        'in API group "" in the namespace "default"'
    )


def test_user_allowed_to_patch_ephemeralcontainers_can_add_one(api, target, emulator):
    emulator.add_user("debugger", rules=[{"verbs": ["patch"], "resources": ["pods/ephemeralcontainers"]}])
    assert api.as_user("debugger").patch(EPHEMERAL, _smp(DEBUGGER)).status_code == 200


def test_main_pod_resource_cannot_add_ephemeral_containers(api, target):
    response = api.patch("/api/v1/namespaces/default/pods/target", _smp(DEBUGGER))
    assert response.status_code == 422


def test_modified_event_is_emitted(api, target, emulator):
    listed = api.get("/api/v1/namespaces/default/pods").json()["metadata"]["resourceVersion"]
    api.patch(EPHEMERAL, _smp(DEBUGGER))
    response = api.get(
        "/api/v1/namespaces/default/pods",
        params={"watch": "true", "resourceVersion": listed, "timeoutSeconds": "0"},
    )
    events = [json.loads(line) for line in response.text.splitlines()]
    assert any(
        e["type"] == "MODIFIED" and _ephemeral_names(e["object"]) == ["debugger-abcde"] for e in events
    )


def _restricted_namespace(api, mode="enforce"):
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted"}
    api.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "locked", "labels": labels}},
    )


def test_pod_security_enforce_refuses_a_non_compliant_debugger(api, emulator, make_pod):
    _restricted_namespace(api, "enforce")
    emulator.apply(make_pod(name="target", namespace="locked"))  # in-process: no admission for the target
    response = api.patch("/api/v1/namespaces/locked/pods/target/ephemeralcontainers", _smp(DEBUGGER))
    assert response.status_code == 403
    assert response.json()["message"].startswith(
        'pods "target" is forbidden: violates PodSecurity "restricted:latest": '
    )


def test_pod_security_warn_adds_a_warning_header(api, emulator, make_pod):
    _restricted_namespace(api, "warn")
    emulator.apply(make_pod(name="target", namespace="locked"))
    response = api.patch("/api/v1/namespaces/locked/pods/target/ephemeralcontainers", _smp(DEBUGGER))
    assert response.status_code == 200
    assert response.headers["Warning"].startswith(
        '299 - "would violate PodSecurity \\"restricted:latest\\": '
    )


def test_pod_security_enforce_refuses_a_non_compliant_pod_create(api, make_pod):
    _restricted_namespace(api, "enforce")
    response = api.post("/api/v1/namespaces/locked/pods", make_pod(name="plain", namespace="locked"))
    assert response.status_code == 403
    assert response.json()["message"].startswith(
        'pods "plain" is forbidden: violates PodSecurity "restricted:latest": '
    )


def _ephemeral_state(emulator, name):
    statuses = emulator.get("pods", "default", "target")["status"].get("ephemeralContainerStatuses", [])
    return next((s["state"] for s in statuses if s["name"] == name), {})


def test_set_create_delay_none_keeps_later_containers_creating(api, target, emulator):
    emulator.set_create_delay(None)
    api.patch(EPHEMERAL, _smp({**DEBUGGER, "name": "stuck"}))
    emulator.set_create_delay(0.01)
    api.patch(EPHEMERAL, _smp({**DEBUGGER, "name": "stuck"}, {**DEBUGGER, "name": "quick"}))
    emulator.wait_for(lambda: "running" in _ephemeral_state(emulator, "quick"), timeout=20)
    assert _ephemeral_state(emulator, "stuck") == {"waiting": {"reason": "ContainerCreating"}}


def test_negative_create_delay_is_refused(emulator):
    with pytest.raises(ValueError, match="negative"):
        emulator.set_create_delay(-1)
