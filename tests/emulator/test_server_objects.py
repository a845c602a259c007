"""Objects: namespaces, nodes, pods and workloads: create, get, list with selectors, delete, tables."""

from __future__ import annotations

import pytest

from kdebug_emulator.status import already_exists, not_found

PODS = "/api/v1/namespaces/default/pods"
TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)


def _names(response):
    return sorted(item["metadata"]["name"] for item in response.json()["items"])


def test_default_namespaces_exist(api):
    assert {"default", "kube-system"} <= set(_names(api.get("/api/v1/namespaces")))


def test_namespace_create_keeps_labels_and_adds_the_name_label(api):
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab", "labels": {"team": "a"}}}
    response = api.post("/api/v1/namespaces", body)
    assert response.status_code == 201
    labels = api.get("/api/v1/namespaces/lab").json()["metadata"]["labels"]
    assert labels == {"team": "a", "kubernetes.io/metadata.name": "lab"}


def test_namespace_is_active(api):
    assert api.get("/api/v1/namespaces/default").json()["status"] == {"phase": "Active"}


def test_node_has_os_and_arch_labels_and_node_info(api):
    node = api.get("/api/v1/nodes/kdebug-node").json()
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "amd64"
    assert node["status"]["nodeInfo"]["operatingSystem"] == "linux"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/namespaces/default/pods/x", not_found("pods", "x")),
        ("/api/v1/namespaces/nope", not_found("namespaces", "nope")),
        ("/apis/apps/v1/namespaces/default/deployments/x", not_found("deployments", "x", "apps")),
        ("/api/v1/nodes/x", not_found("nodes", "x")),
    ],
    ids=["pod", "namespace", "deployment", "node"],
)
def test_missing_objects_get_404_worded_like_the_api_server(api, path, body):
    response = api.get(path)
    assert response.status_code == 404
    assert response.json() == body


def test_deployment_404_message_names_the_group(api):
    message = api.get("/apis/apps/v1/namespaces/default/deployments/x").json()["message"]
    assert message == 'deployments.apps "x" not found'


def test_created_pod_has_server_metadata(api, make_pod):
    pod = api.post(PODS, make_pod(name="p1")).json()
    meta = pod["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1


def test_created_pod_gets_defaults(api, make_pod):
    pod = api.post(PODS, make_pod(name="p1")).json()
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert (spec["nodeName"], spec["restartPolicy"], spec["dnsPolicy"]) == (
        "kdebug-node",
        "Always",
        "ClusterFirst",
    )
    assert container["terminationMessagePolicy"] == "File"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert pod["status"]["qosClass"] == "BestEffort"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
    ],
    ids=["no-tag", "latest", "tag", "digest"],
)
def test_image_pull_policy_default_follows_the_tag(api, make_pod, image, policy):
    pod = api.post(PODS, make_pod(name="p1", containers=[{"name": "c", "image": image}])).json()
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_created_pod_starts_pending_and_becomes_running(api, emulator, make_pod):
    pod = api.post(PODS, make_pod(name="p1")).json()
    assert pod["status"]["phase"] == "Pending"
    emulator.wait_for(lambda: emulator.get("pods", "default", "p1")["status"]["phase"] == "Running")
    status = emulator.get("pods", "default", "p1")["status"]
    assert status["containerStatuses"][0]["ready"] is True
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"


def test_creating_an_existing_pod_is_409(api, make_pod):
    api.post(PODS, make_pod(name="p1"))
    response = api.post(PODS, make_pod(name="p1"))
    assert response.status_code == 409
    assert response.json() == already_exists("pods", "p1")


def test_create_in_missing_namespace_is_404_for_the_namespace(api, make_pod):
    response = api.post("/api/v1/namespaces/nope/pods", make_pod(name="p1", namespace="nope"))
    assert response.status_code == 404
    assert response.json()["message"] == 'namespaces "nope" not found'


def test_create_with_mismatched_namespace_is_400(api, make_pod):
    response = api.post(PODS, make_pod(name="p1", namespace="kube-system"))
    assert response.status_code == 400
    assert response.json()["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def test_generate_name_makes_a_name(api, make_pod):
    pod = make_pod(name="ignored")
    pod["metadata"] = {"generateName": "gen-"}
    name = api.post(PODS, pod).json()["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


def test_delete_pod_returns_it_and_removes_it(api, emulator, make_pod):
    api.post(PODS, make_pod(name="p1"))
    response = api.request("DELETE", PODS + "/p1")
    assert response.status_code == 200
    assert response.json()["metadata"]["name"] == "p1"
    assert emulator.get("pods", "default", "p1") is None


@pytest.mark.parametrize(
    ("path", "kind", "extra"),
    [
        ("/apis/apps/v1/namespaces/default/deployments", "Deployment", {"replicas": 1}),
        ("/apis/apps/v1/namespaces/default/statefulsets", "StatefulSet", {"serviceName": "s"}),
        ("/apis/apps/v1/namespaces/default/daemonsets", "DaemonSet", {}),
        ("/apis/apps/v1/namespaces/default/replicasets", "ReplicaSet", {}),
        ("/apis/batch/v1/namespaces/default/jobs", "Job", {}),
    ],
    ids=["deployment", "statefulset", "daemonset", "replicaset", "job"],
)
def test_workloads_can_be_created_and_read(api, path, kind, extra):
    group_version = "batch/v1" if kind == "Job" else "apps/v1"
    template = {
        "metadata": {"labels": {"app": "w"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    body = {
        "apiVersion": group_version,
        "kind": kind,
        "metadata": {"name": "w"},
        "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": template, **extra},
    }
    assert api.post(path, body).status_code == 201
    stored = api.get(path + "/w").json()
    assert (stored["kind"], stored["metadata"]["generation"]) == (kind, 1)


def test_secret_string_data_is_stored_base64(api):
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull"}, "stringData": {"k": "v"}}
    api.post("/api/v1/namespaces/default/secrets", body)
    secret = api.get("/api/v1/namespaces/default/secrets/pull").json()
    assert (secret["data"], secret["type"]) == ({"k": "dg=="}, "Opaque")


def test_list_has_kind_and_resource_version(api, make_pod):
    api.post(PODS, make_pod(name="p1"))
    body = api.get(PODS).json()
    assert body["kind"] == "PodList"
    assert int(body["metadata"]["resourceVersion"]) >= int(body["items"][0]["metadata"]["resourceVersion"])


def test_all_namespaces_list(api, make_pod):
    api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    api.post(PODS, make_pod(name="a"))
    api.post("/api/v1/namespaces/other/pods", make_pod(name="b", namespace="other"))
    assert _names(api.get("/api/v1/pods")) == ["a", "b"]


LABELLED = {"a": {"app": "web", "tier": "front"}, "b": {"app": "api"}, "c": {"tier": "back"}}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a"]),
        ("app==api", ["b"]),
        ("app!=web", ["b", "c"]),
        ("app in (web,api)", ["a", "b"]),
        ("app notin (web)", ["b", "c"]),
        ("tier", ["a", "c"]),
        ("!app", ["c"]),
        ("app=web,tier=front", ["a"]),
    ],
    ids=["equals", "double-equals", "not-equals", "in", "notin", "exists", "not-exists", "and"],
)
def test_label_selectors(api, make_pod, selector, expected):
    for name, labels in LABELLED.items():
        api.post(PODS, make_pod(name=name, labels=labels))
    assert _names(api.get(PODS, params={"labelSelector": selector})) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=b", ["b"]),
        ("metadata.name!=b", ["a", "c"]),
        ("metadata.namespace=default", ["a", "b", "c"]),
        ("spec.nodeName=kdebug-node", ["a", "b", "c"]),
        ("status.phase=Failed", []),
    ],
    ids=["name", "name-not", "namespace", "node", "phase"],
)
def test_field_selectors(api, make_pod, selector, expected):
    for name in LABELLED:
        api.post(PODS, make_pod(name=name))
    assert _names(api.get(PODS, params={"fieldSelector": selector})) == expected


def test_unsupported_field_selector_is_400(api):
    response = api.get(PODS, params={"fieldSelector": "spec.foo=x"})
    assert response.status_code == 400
    assert response.json()["message"] == "field label not supported: spec.foo"


def test_limit_truncates_and_offers_continue(api, make_pod):
    for name in LABELLED:
        api.post(PODS, make_pod(name=name))
    first = api.get(PODS, params={"limit": "2"}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    rest = api.get(PODS, params={"limit": "2", "continue": first["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c"]


def test_pod_table_has_kubectl_columns_and_partial_metadata_rows(api, emulator, make_pod):
    api.post(PODS, make_pod(name="p1"))
    emulator.wait_for(lambda: emulator.get("pods", "default", "p1")["status"]["phase"] == "Running")
    table = api.get(PODS, headers={"Accept": TABLE_ACCEPT}).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    row = table["rows"][0]
    assert row["cells"][:4] == ["p1", "1/1", "Running", "0"]
    assert row["object"]["kind"] == "PartialObjectMetadata"


def test_namespace_table_columns(api):
    table = api.get("/api/v1/namespaces/default", headers={"Accept": TABLE_ACCEPT}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert table["rows"][0]["cells"][:2] == ["default", "Active"]


def test_emulator_apply_creates_then_replaces(emulator, make_pod):
    first = emulator.apply(make_pod(name="p1", labels={"v": "1"}))
    second = emulator.apply(make_pod(name="p1", labels={"v": "2"}))
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert emulator.get("pods", "default", "p1")["metadata"]["labels"] == {"v": "2"}


def test_emulator_apply_creates_a_missing_namespace(emulator, make_pod):
    emulator.apply(make_pod(name="p1", namespace="fresh"))
    assert emulator.get("namespaces", None, "fresh") is not None


def test_emulator_delete_removes_the_object(emulator, make_pod):
    emulator.apply(make_pod(name="p1"))
    emulator.delete("pods", "default", "p1")
    assert emulator.get("pods", "default", "p1") is None


def test_deployment_table_shows_ready_replicas(demo_emulator):
    from tests.fixtures.emulators import ApiClient

    api = ApiClient(demo_emulator)
    table = api.get("/apis/apps/v1/namespaces/demo/deployments", headers={"Accept": TABLE_ACCEPT}).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:4] == ["shop", "2/2", 2, 2]


def test_events_list_is_empty_but_served(api):
    body = api.get("/api/v1/namespaces/default/events").json()
    assert (body["kind"], body["items"]) == ("EventList", [])
