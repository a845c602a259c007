"""pods/attach, pods/exec and pods/log: checks done by the API server before the runtime gets the stream."""

from __future__ import annotations

import json
import ssl

import pytest
import websocket

POD = "/api/v1/namespaces/default/pods/target"
DEBUGGER = {
    "name": "dbg",
    "image": "busybox:1.36",
    "command": ["sh"],
    "stdin": True,
    "tty": False,
    "targetContainerName": "app",
}


@pytest.fixture
def target(emulator, make_pod):
    pod = emulator.apply(make_pod(name="target"))
    emulator.wait_for(lambda: emulator.get("pods", "default", "target")["status"]["phase"] == "Running")
    return pod


def _with_debugger(api, emulator):
    patch = {"spec": {"ephemeralContainers": [DEBUGGER]}}
    assert api.patch(POD + "/ephemeralcontainers", patch).status_code == 200

    def running() -> bool:
        statuses = emulator.get("pods", "default", "target")["status"].get("ephemeralContainerStatuses", [])
        return bool(statuses) and "running" in statuses[0]["state"]

    emulator.wait_for(running)


@pytest.mark.parametrize("kind", ["attach", "exec"], ids=["attach", "exec"])
def test_missing_pod_is_404(api, kind):
    response = api.get(f"{POD}/{kind}", params={"container": "app", "command": "ls"})
    assert response.status_code == 404
    assert response.json()["message"] == 'pods "target" not found'


@pytest.mark.parametrize("kind", ["attach", "exec", "log"], ids=["attach", "exec", "log"])
def test_unknown_container_is_400(api, target, kind):
    response = api.get(f"{POD}/{kind}", params={"container": "nope", "command": "ls"})
    assert response.status_code == 400
    assert response.json()["message"] == "container nope is not valid for pod target"


def test_several_containers_need_a_container_name(api, emulator, make_pod):
    emulator.apply(make_pod(name="target", containers=["one", "two"]))
    response = api.get(f"{POD}/attach")
    assert response.status_code == 400
    assert (
        response.json()["message"]
        == "a container name must be specified for pod target, choose one of: [one two]"
    )


@pytest.mark.parametrize("kind", ["attach", "exec"], ids=["attach", "exec"])
def test_spdy_post_gets_an_error_instead_of_an_upgrade(api, target, kind):
    response = api.request(
        "POST",
        f"{POD}/{kind}",
        params={"container": "app", "command": "ls"},
        headers={
            "Connection": "Upgrade",
            "Upgrade": "SPDY/3.1",
            "X-Stream-Protocol-Version": "v4.channel.k8s.io",
        },
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Upgrade request required"


def test_exec_without_a_command_is_400(api, target):
    response = api.get(f"{POD}/exec", params={"container": "app"})
    assert response.status_code == 400
    assert response.json()["message"] == "you must specify at least 1 command"


@pytest.mark.parametrize(
    ("kind", "subresource"), [("attach", "pods/attach"), ("exec", "pods/exec")], ids=["attach", "exec"]
)
def test_attach_and_exec_need_create_permission(api, target, emulator, kind, subresource):
    emulator.add_user("reader", rules=[{"verbs": ["get", "list", "watch"], "resources": ["*"]}])
    response = api.as_user("reader").get(f"{POD}/{kind}", params={"container": "app", "command": "ls"})
    assert response.status_code == 403
    assert response.json()["message"] == (
        f'pods "target" is forbidden: User "reader" cannot create resource "{subresource}" in API group "" '
        'in the namespace "default"'
    )


def test_log_needs_get_on_pods_log(api, target, emulator):
    emulator.add_user("lister", rules=[{"verbs": ["get"], "resources": ["pods"]}])
    response = api.as_user("lister").get(f"{POD}/log")
    assert response.status_code == 403


def test_attach_to_a_container_still_creating_is_400(api, target, emulator):
    patch = {"spec": {"ephemeralContainers": [{**DEBUGGER, "image": "registry.kdebug.test/missing:1"}]}}
    api.patch(POD + "/ephemeralcontainers", patch)
    response = api.get(f"{POD}/attach", params={"container": "dbg"})
    assert response.status_code == 400
    assert response.json()["message"].startswith('container "dbg" in pod "target" is waiting to start: ')


def _ws_url(emulator, path):
    return emulator.url.replace("https://", "wss://") + path


def _read_channel(ws, channel):
    """Frames until the one on `channel`; a v5 close frame or the end returns what came so far."""
    output = b""
    while True:
        frame = ws.recv()
        if not frame:
            return output
        frame = frame if isinstance(frame, bytes) else frame.encode()
        if frame[0] == channel:
            return output + frame[1:]
        if frame[0] == 1:
            output += frame[1:]


def test_websocket_exec_upgrades_and_streams_output(api, target, emulator):
    _with_debugger(api, emulator)
    ws = websocket.create_connection(
        _ws_url(emulator, f"{POD}/exec?container=dbg&command=echo&command=hello&stdout=true&stderr=true"),
        header=[f"Authorization: Bearer {emulator.token()}"],
        subprotocols=["v5.channel.k8s.io"],
        sslopt={"ca_certs": str(emulator.ca_path), "cert_reqs": ssl.CERT_REQUIRED},
        timeout=20,
    )
    try:
        assert ws.getsubprotocol() == "v5.channel.k8s.io"
        output = b""
        error = None
        while error is None:
            frame = ws.recv()
            if frame[0] == 1:
                output += frame[1:]
            elif frame[0] == 3:
                error = json.loads(frame[1:])
    finally:
        ws.close()
    assert output == b"hello\n"
    assert error["status"] == "Success"
    emulator.wait_for(lambda: any(r["path"] == f"{POD}/exec" for r in emulator.requests))
    assert [r["code"] for r in emulator.requests if r["path"] == f"{POD}/exec"] == [101]
