"""Replay what the real kubectl v1.32.4 sent (k8s-captures/kubectl-requests) and check each answer is the
API server's: the same method, path, headers and body, only the host rewritten."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from kdebug_emulator import Emulator
from tests.fixtures.pods import build_pod

CAPTURES = Path("/work/shared/k8s-captures/kubectl-requests/requests.jsonl")
WEBSOCKET_HEADERS = {
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "host",
    "content-length",
}

pytestmark = pytest.mark.skipif(not CAPTURES.exists(), reason=f"{CAPTURES} is absent")


@dataclass
class Replayed:
    method: str
    path: str
    headers: dict[str, str]
    sent: Any
    code: int
    body: Any


def _load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CAPTURES.read_text().splitlines() if line.strip()]


def _is_websocket(request: dict[str, Any]) -> bool:
    return any(k.lower() == "upgrade" and v.lower() == "websocket" for k, v in request["headers"])


def _send_websocket(emu: Emulator, request: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    protocols = [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    extra = [f"{k}: {v}" for k, v in headers.items() if k.lower() not in WEBSOCKET_HEADERS]
    extra.append(f"Authorization: Bearer {emu.token()}")
    try:
        ws = websocket.create_connection(
            emu.url.replace("https://", "wss://") + request["path"],
            header=extra,
            subprotocols=protocols,
            sslopt={"ca_certs": str(emu.ca_path), "cert_reqs": ssl.CERT_REQUIRED},
            timeout=20,
        )
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code, None
    code = ws.handshake_response.status
    ws.close()
    return code, None


def _send_http(
    session: requests.Session, emu: Emulator, request: dict[str, Any], headers: dict[str, str]
) -> tuple[int, Any]:
    data = json.dumps(request["body"]).encode() if request["body"] is not None else None
    send_headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
    if "watch=true" in request["path"]:
        with session.request(
            request["method"], emu.url + request["path"], headers=send_headers, stream=True, timeout=20
        ) as response:
            first = next(line for line in response.iter_lines(chunk_size=1) if line)
            return response.status_code, json.loads(first)
    response = session.request(
        request["method"], emu.url + request["path"], data=data, headers=send_headers, timeout=20
    )
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _ephemeral_running(emu: Emulator, name: str) -> bool:
    pod = emu.get("pods", "lab", "scratch-app")
    statuses = pod["status"].get("ephemeralContainerStatuses", [])
    return any(s["name"] == name and "running" in s["state"] for s in statuses)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Any:
    emu = Emulator(workdir=tmp_path_factory.mktemp("captures"))
    emu.start()
    try:
        emu.apply(build_pod(name="scratch-app", namespace="lab"))
        emu.wait_for(lambda: emu.get("pods", "lab", "scratch-app")["status"]["phase"] == "Running")
        session = requests.Session()
        session.trust_env = False
        session.verify = str(emu.ca_path)
        session.headers["Authorization"] = f"Bearer {emu.token()}"
        results: list[Replayed] = []
        for request in _load():
            headers = dict(request["headers"])
            if _is_websocket(request):
                container = request["path"].split("container=", 1)[1].split("&", 1)[0]
                emu.wait_for(lambda c=container: _ephemeral_running(emu, c), timeout=20)
                code, body = _send_websocket(emu, request, headers)
            else:
                code, body = _send_http(session, emu, request, headers)
            results.append(Replayed(request["method"], request["path"], headers, request["body"], code, body))
        yield emu, results
    finally:
        emu.stop()


def _select(results: list[Replayed], method: str, fragment: str) -> list[Replayed]:
    return [r for r in results if r.method == method and fragment in r.path]


def test_every_ephemeral_patch_is_answered_with_the_pod_holding_the_new_container(replay):
    _, results = replay
    patches = _select(results, "PATCH", "/ephemeralcontainers")
    assert len(patches) == 9
    for patch in patches:
        added = patch.sent["spec"]["ephemeralContainers"][0]["name"]
        assert patch.code == 200
        assert added in [c["name"] for c in patch.body["spec"]["ephemeralContainers"]]


def test_patches_accumulate_in_set_element_order(replay):
    emu, results = replay
    last = _select(results, "PATCH", "/ephemeralcontainers")[-1]
    order = [entry["name"] for entry in last.sent["spec"]["$setElementOrder/ephemeralContainers"]]
    stored = emu.get("pods", "lab", "scratch-app")
    assert [c["name"] for c in stored["spec"]["ephemeralContainers"]] == order


def test_list_with_field_selector_returns_the_pod(replay):
    _, results = replay
    (listing,) = [r for r in results if "limit=500" in r.path]
    assert listing.code == 200
    assert [i["metadata"]["name"] for i in listing.body["items"]] == ["scratch-app"]


def test_watch_answers_with_events_for_the_pod(replay):
    _, results = replay
    (watch,) = [r for r in results if "watch=true" in r.path]
    assert watch.code == 200
    assert watch.body["type"] in ("ADDED", "MODIFIED")
    assert watch.body["object"]["metadata"]["name"] == "scratch-app"


def test_websocket_attach_and_exec_upgrade(replay):
    _, results = replay
    upgrades = [r for r in results if r.method == "GET" and ("/attach" in r.path or "/exec" in r.path)]
    assert len(upgrades) == 3
    assert {r.code for r in upgrades} == {101}


def test_spdy_posts_get_an_error_not_an_upgrade(replay):
    _, results = replay
    posts = [r for r in results if r.method == "POST" and ("/attach" in r.path or "/exec" in r.path)]
    assert len(posts) == 3
    assert all(400 <= r.code < 500 and r.body["kind"] == "Status" for r in posts)


def test_log_fallback_is_served(replay):
    _, results = replay
    (log,) = _select(results, "GET", "/log?")
    assert log.code == 200


def test_get_of_a_missing_pod_is_a_404_status(replay):
    _, results = replay
    (missing,) = _select(results, "GET", "/pods/nonexistent")
    assert missing.code == 404
    assert missing.body["message"] == 'pods "nonexistent" not found'


def test_namespace_get_after_the_404_succeeds(replay):
    _, results = replay
    (namespace,) = [r for r in results if r.path == "/api/v1/namespaces/lab"]
    assert namespace.code == 200
    # kubectl get asks for a Table (Accept: ...;as=Table;...), so the namespace comes back as one row
    assert namespace.body["kind"] == "Table"
    assert namespace.body["rows"][0]["cells"][:2] == ["lab", "Active"]


def test_never_pull_of_a_missing_image_ends_in_err_image_never_pull(replay):
    emu, results = replay
    (never,) = [
        r
        for r in _select(results, "PATCH", "/ephemeralcontainers")
        if r.sent["spec"]["ephemeralContainers"][0].get("imagePullPolicy") == "Never"
    ]
    assert never.code == 200
    name = never.sent["spec"]["ephemeralContainers"][0]["name"]

    def reason() -> str:
        statuses = emu.get("pods", "lab", "scratch-app")["status"]["ephemeralContainerStatuses"]
        state = next(s["state"] for s in statuses if s["name"] == name)
        return state.get("waiting", {}).get("reason", "")

    emu.wait_for(lambda: reason() == "ErrImageNeverPull", timeout=20)
