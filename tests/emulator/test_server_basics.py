"""The emulator's HTTP basics: TLS, authentication, version/health, discovery, the request log."""

from __future__ import annotations

import base64
import ssl
import urllib.request

import pytest
import requests
import yaml

from kdebug_emulator import Emulator
from kdebug_emulator.status import status
from kdebug_emulator.store import RequestLog


def _kubeconfig(path):
    return yaml.safe_load(path.read_text())


def test_serves_https_on_loopback_with_a_random_port(emulator):
    assert emulator.url.startswith("https://127.0.0.1:")
    assert int(emulator.url.rsplit(":", 1)[1]) > 0


def test_kubeconfig_carries_the_ca_that_signed_the_server_cert(emulator):
    config = _kubeconfig(emulator.kubeconfig)
    ca_pem = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    context = ssl.create_default_context(cadata=ca_pem.decode())
    with urllib.request.urlopen(emulator.url + "/healthz", context=context, timeout=10) as response:
        assert response.read() == b"ok"


def test_kubeconfig_defaults_to_admin_in_namespace_default(emulator):
    config = _kubeconfig(emulator.kubeconfig)
    assert config["current-context"] == "kdebug-emulator"
    context = config["contexts"][0]["context"]
    assert (context["user"], context["namespace"]) == ("admin", "default")
    assert config["users"][0]["user"]["token"] == emulator.token("admin")


def test_server_cert_is_refused_without_the_ca(emulator):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emulator.url + "/version", timeout=10)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"], ids=["healthz", "readyz", "livez"])
def test_health_endpoints_answer_ok_without_credentials(emulator, path):
    response = requests.get(emulator.url + path, verify=str(emulator.ca_path), timeout=10)
    assert (response.status_code, response.text) == (200, "ok")


def test_version_looks_like_a_kube_apiserver(api):
    body = api.get("/version").json()
    assert body["major"] == "1"
    assert body["gitVersion"].startswith(f"v1.{body['minor']}.")


def test_unknown_token_gets_401_status(emulator):
    response = requests.get(
        emulator.url + "/api/v1/pods",
        headers={"Authorization": "Bearer nope"},
        verify=str(emulator.ca_path),
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json() == status(401, "Unauthorized", "Unauthorized")


def test_anonymous_user_is_forbidden_resources(emulator):
    response = requests.get(
        emulator.url + "/api/v1/namespaces/default/pods", verify=str(emulator.ca_path), timeout=10
    )
    assert response.status_code == 403
    assert response.json()["message"] == (
        'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" '
        'in the namespace "default"'
    )


def test_client_certificate_user_is_authenticated_by_cn_and_groups(emulator, tmp_path):
    emulator.add_user("carol", groups=("devs",))
    config = _kubeconfig(emulator.write_kubeconfig(tmp_path / "kc", user="carol", auth="cert"))
    user = config["users"][0]["user"]
    (tmp_path / "c.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (tmp_path / "c.key").write_bytes(base64.b64decode(user["client-key-data"]))
    response = requests.post(
        emulator.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        cert=(str(tmp_path / "c.crt"), str(tmp_path / "c.key")),
        verify=str(emulator.ca_path),
        timeout=10,
    )
    assert response.status_code == 201
    info = response.json()["status"]["userInfo"]
    assert (info["username"], info["groups"]) == ("carol", ["devs", "system:authenticated"])


def test_api_lists_v1(api):
    body = api.get("/api").json()
    assert (body["kind"], body["versions"]) == ("APIVersions", ["v1"])


def test_apis_lists_the_served_groups(api):
    groups = {g["name"] for g in api.get("/apis").json()["groups"]}
    assert groups == {"apps", "batch", "authorization.k8s.io", "authentication.k8s.io"}


def _resources(api, path):
    return {r["name"]: r for r in api.get(path).json()["resources"]}


@pytest.mark.parametrize(
    ("name", "short_name"),
    [("pods", "po"), ("namespaces", "ns")],
    ids=["pods-po", "namespaces-ns"],
)
def test_core_discovery_has_short_names(api, name, short_name):
    assert short_name in _resources(api, "/api/v1")[name]["shortNames"]


@pytest.mark.parametrize(
    ("name", "short_name"),
    [("deployments", "deploy"), ("statefulsets", "sts"), ("daemonsets", "ds"), ("replicasets", "rs")],
    ids=["deploy", "sts", "ds", "rs"],
)
def test_apps_discovery_has_short_names(api, name, short_name):
    assert _resources(api, "/apis/apps/v1")[name]["shortNames"] == [short_name]


def test_core_discovery_lists_pod_subresources_with_verbs(api):
    resources = _resources(api, "/api/v1")
    assert resources["pods/ephemeralcontainers"]["verbs"] == ["get", "patch", "update"]
    assert "create" in resources["pods/attach"]["verbs"]
    assert "create" in resources["pods/exec"]["verbs"]
    assert resources["pods/log"]["verbs"] == ["get"]
    assert resources["pods"]["namespaced"] is True
    assert resources["nodes"]["namespaced"] is False


def test_unknown_group_version_is_404_with_empty_details(api):
    response = api.get("/apis/example.com/v1")
    assert response.status_code == 404
    assert response.json() == status(404, "NotFound", "the server could not find the requested resource", {})


def test_openapi_v2_is_not_served(api):
    assert api.get("/openapi/v2").status_code == 404


def test_openapi_v3_root_lists_group_versions(api):
    paths = api.get("/openapi/v3").json()["paths"]
    assert {"api/v1", "apis/apps/v1"} <= set(paths)
    assert paths["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")


def test_openapi_v3_declares_field_validation_on_pod_patch(api):
    # kubectl create/apply read this to decide on server-side field validation (fieldValidation=Strict)
    document = api.get("/openapi/v3/api/v1").json()
    patch = document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][2].items()


def test_request_log_records_method_path_query_user_agent_code_and_content_type(api, emulator):
    api.request(
        "PATCH",
        "/api/v1/namespaces/default/pods/nope/ephemeralcontainers",
        data=b'{"spec": {}}',
        headers={"Content-Type": "application/strategic-merge-patch+json", "User-Agent": "kdebug/9.9 (test)"},
    )
    entry = emulator.requests[-1]
    assert entry == {
        "method": "PATCH",
        "path": "/api/v1/namespaces/default/pods/nope/ephemeralcontainers",
        "query": "",
        "user": "admin",
        "user_agent": "kdebug/9.9 (test)",
        "code": 404,
        "content_type": "application/strategic-merge-patch+json",
        "labels": None,
    }


def test_request_log_records_the_labels_a_create_carries(api, emulator, make_pod):
    api.post(
        "/api/v1/namespaces/default/pods", make_pod(name="labelled", labels={"kdebug.dev/copy-of": "web"})
    )
    assert emulator.requests[-1]["labels"] == {"kdebug.dev/copy-of": "web"}


def test_request_log_records_the_labels_of_the_object_a_delete_removed(api, emulator, make_pod):
    emulator.apply(make_pod(name="doomed", labels={"app": "shop"}))
    api.request("DELETE", "/api/v1/namespaces/default/pods/doomed")
    assert (emulator.requests[-1]["method"], emulator.requests[-1]["labels"]) == ("DELETE", {"app": "shop"})


def test_request_log_keeps_its_last_entries_and_listeners_see_every_one():
    log, seen = RequestLog(limit=2), []
    log.subscribe(seen.append)
    for n in range(3):
        log.add({"n": n})
    assert (log.snapshot(), seen) == ([{"n": 1}, {"n": 2}], [{"n": 0}, {"n": 1}, {"n": 2}])


def test_on_request_sees_each_request_as_it_is_logged(api, emulator):
    seen: list[str] = []
    emulator.on_request(lambda entry: seen.append(entry["path"]))
    api.get("/version")
    assert seen == ["/version"]


def test_request_log_keeps_the_query_string(api, emulator):
    api.get("/api/v1/namespaces/default/pods", params={"limit": "5"})
    assert emulator.requests[-1]["query"] == "limit=5"


def test_plain_http_mode_serves_http(tmp_path):
    with Emulator(tls=False, workdir=tmp_path / "emu") as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        response = requests.get(
            emu.url + "/api/v1/namespaces", headers={"Authorization": f"Bearer {emu.token()}"}, timeout=10
        )
        assert response.status_code == 200


def test_fixed_port_is_used(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Emulator(port=port, workdir=tmp_path / "emu") as emu:
        assert emu.url.endswith(f":{port}")


def test_temporary_workdir_is_removed_on_stop():
    emu = Emulator().start()
    workdir = emu.workdir
    assert (workdir / "kubeconfig").exists()
    emu.stop()
    assert not workdir.exists()


def test_runtime_none_marks_containers_running_without_processes(tmp_path, make_pod):
    with Emulator(runtime="none", workdir=tmp_path / "emu") as emu:
        emu.apply(make_pod(name="p1"))
        emu.wait_for(lambda: emu.get("pods", "default", "p1")["status"]["phase"] == "Running")
        assert emu.runtime_name == "none"
