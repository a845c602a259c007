"""kdebug.kube.client: kubeconfig loading, error mapping and retries, against real HTTP servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from kdebug.errors import (
    ApiError,
    ExitCode,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    UnreachableError,
    UsageError,
)
from kdebug.kube import client as kube

POD = "/api/v1/namespaces/d/pods/web"
EPHEMERAL = POD + "/ephemeralcontainers"


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> str:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return json.dumps(body)


@pytest.mark.parametrize(
    ("status", "path", "details", "error_type", "code"),
    [
        pytest.param(403, POD, {}, PermissionDeniedError, ExitCode.PERMISSION_DENIED, id="403 forbidden"),
        pytest.param(404, POD, {"name": "web"}, NotFoundError, ExitCode.NOT_FOUND, id="404 not found"),
        pytest.param(
            404,
            EPHEMERAL,
            {},
            NotSupportedError,
            ExitCode.NOT_SUPPORTED,
            id="404 empty details on ephemeralcontainers",
        ),
        pytest.param(422, EPHEMERAL, {}, ApiError, ExitCode.API_ERROR, id="422 invalid"),
        pytest.param(500, "/api/v1/namespaces/d/pods", None, ApiError, ExitCode.API_ERROR, id="500"),
    ],
)
def test_error_from_response_maps_status(status, path, details, error_type, code):
    error = kube.error_from_response(
        status, status_body(status, "R", "the server's words", details), "PATCH", path, "https://k"
    )
    assert type(error) is error_type
    assert error.exit_code == code


def test_server_message_is_kept():
    error = kube.error_from_response(
        403,
        status_body(403, "Forbidden", 'pods "web" is forbidden: no'),
        "GET",
        "/api/v1/namespaces/d/pods/web",
        "https://k",
    )
    assert error.message == 'pods "web" is forbidden: no'


def test_disabled_ephemeral_containers_are_named():
    body = status_body(404, "NotFound", "the server could not find the requested resource", {})
    error = kube.error_from_response(404, body, "PATCH", EPHEMERAL, "https://k")
    assert error.message == "ephemeral containers are disabled for this cluster"


def test_401_says_credentials_rejected_without_secrets():
    error = kube.error_from_response(
        401, status_body(401, "Unauthorized", "Unauthorized"), "GET", "/api", "https://k:6443"
    )
    assert isinstance(error, UnreachableError)
    assert "rejected the credentials" in error.message


class ScriptedServer:
    """A real HTTP server that answers each request with the next (status, body) in its script."""

    def __init__(self, script: list[tuple[int, str]]):
        self.script = list(script)
        self.seen: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.seen.append((self.command, self.path, dict(self.headers)))
                status, body = outer.script.pop(0) if outer.script else (200, "{}")
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_POST = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_kubeconfig(
    path,
    server: str,
    namespace: str | None = "team-a",
    token: str = "s3cr3t-token",
    context: str = "ctx-a",
    extra_contexts: tuple[str, ...] = (),
) -> None:
    contexts = [
        {
            "name": context,
            "context": {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})},
        }
    ]
    contexts += [
        {"name": name, "context": {"cluster": "c", "user": "u", "namespace": name}} for name in extra_contexts
    ]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": contexts,
            }
        )
    )


@pytest.fixture
def server():
    created: list[ScriptedServer] = []

    def make(script: list[tuple[int, str]]) -> ScriptedServer:
        created.append(ScriptedServer(script))
        return created[-1]

    yield make
    for each in created:
        each.close()


def test_connect_takes_namespace_from_current_context(tmp_path):
    path = tmp_path / "config"
    write_kubeconfig(path, "http://127.0.0.1:1", namespace="team-a")
    assert kube.connect(str(path)).namespace == "team-a"


def test_connect_defaults_namespace_to_default(tmp_path):
    path = tmp_path / "config"
    write_kubeconfig(path, "http://127.0.0.1:1", namespace=None)
    assert kube.connect(str(path)).namespace == "default"


def test_connect_uses_named_context(tmp_path):
    path = tmp_path / "config"
    write_kubeconfig(path, "http://127.0.0.1:1", extra_contexts=("team-b",))
    assert kube.connect(str(path), context="team-b").namespace == "team-b"


def test_unknown_context_is_usage_error(tmp_path):
    path = tmp_path / "config"
    write_kubeconfig(path, "http://127.0.0.1:1")
    with pytest.raises(UsageError):
        kube.connect(str(path), context="nope")


def test_kubeconfig_env_with_several_files_is_merged(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    write_kubeconfig(first, "http://127.0.0.1:1", namespace="from-first")
    second.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "contexts": [
                    {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "from-second"}}
                ],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    assert kube.connect(None, context="other").namespace == "from-second"


def test_missing_kubeconfig_file_is_usage_error(tmp_path):
    with pytest.raises(UsageError) as info:
        kube.connect(str(tmp_path / "absent"))
    assert "does not exist" in info.value.message


def test_requests_carry_bearer_token_and_return_dicts(tmp_path, server):
    api = server([(200, '{"kind": "Pod", "metadata": {"name": "web"}, "spec": {}}')])
    path = tmp_path / "config"
    write_kubeconfig(path, api.url)
    assert kube.connect(str(path)).get("/api/v1/namespaces/team-a/pods/web")["metadata"]["name"] == "web"
    headers = {name.lower(): value for name, value in api.seen[0][2].items()}  # names are case-insensitive
    assert headers["authorization"] == "Bearer s3cr3t-token"
    assert headers["user-agent"].startswith("kdebug/")


def test_patch_sends_strategic_merge_content_type(tmp_path, server):
    api = server([(200, "{}")])
    path = tmp_path / "config"
    write_kubeconfig(path, api.url)
    kube.connect(str(path)).patch("/x", {"spec": {}}, "application/strategic-merge-patch+json")
    assert api.seen[0][2]["Content-Type"] == "application/strategic-merge-patch+json"


@pytest.mark.parametrize("status", [409, 429, 503], ids=["conflict", "throttled", "unavailable"])
def test_retryable_answers_are_retried(tmp_path, server, status):
    api = server([(status, status_body(status, "R", "try later")), (200, '{"ok": true}')])
    path = tmp_path / "config"
    write_kubeconfig(path, api.url)
    client = kube.connect(str(path))
    client.sleep = lambda seconds: None
    assert client.get("/x") == {"ok": True}
    assert len(api.seen) == 2


@pytest.mark.parametrize("status", [409, 503], ids=["conflict", "unavailable"])
def test_a_post_is_not_repeated_after_an_answer_that_may_follow_success(tmp_path, server, status):
    api = server([(status, status_body(status, "R", "maybe created")), (200, '{"ok": true}')])
    path = tmp_path / "config"
    write_kubeconfig(path, api.url)
    client = kube.connect(str(path))
    client.sleep = lambda seconds: None
    with pytest.raises(ApiError):
        client.request("POST", "/api/v1/namespaces/d/pods", body={"kind": "Pod"})
    assert len(api.seen) == 1


def test_a_throttled_post_is_sent_again(tmp_path, server):
    created = {"kind": "Pod", "metadata": {"name": "c"}, "spec": {}}  # the answer has a pod's shape
    api = server([(429, status_body(429, "TooManyRequests", "slow down")), (201, json.dumps(created))])
    path = tmp_path / "config"
    write_kubeconfig(path, api.url)
    client = kube.connect(str(path))
    client.sleep = lambda seconds: None
    assert client.request("POST", "/api/v1/namespaces/d/pods", body={"kind": "Pod"}) == created
    assert len(api.seen) == 2


def test_retries_are_bounded(tmp_path, server):
    api = server([(503, status_body(503, "ServiceUnavailable", "down"))] * 10)
    path = tmp_path / "config"
    write_kubeconfig(path, api.url)
    client = kube.connect(str(path))
    client.sleep = lambda seconds: None
    with pytest.raises(ApiError) as info:
        client.get("/x")
    assert info.value.message == "down"
    assert len(api.seen) == kube.MAX_ATTEMPTS


def test_errors_never_contain_the_token(tmp_path, server):
    api = server([(401, status_body(401, "Unauthorized", "Unauthorized"))])
    path = tmp_path / "config"
    write_kubeconfig(path, api.url)
    with pytest.raises(UnreachableError) as info:
        kube.connect(str(path)).get("/x")
    assert "s3cr3t-token" not in f"{info.value.message} {info.value.hint}"


def test_connection_refused_names_server(tmp_path):
    path = tmp_path / "config"
    write_kubeconfig(path, "http://127.0.0.1:9")
    with pytest.raises(UnreachableError) as info:
        kube.connect(str(path)).get("/x")
    assert info.value.message == "cannot reach the cluster at http://127.0.0.1:9: connection refused"
