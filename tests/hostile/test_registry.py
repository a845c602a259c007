"""Hostile registries over a real socket: the token realm, redirects, slow and huge bodies, layer bombs,
and manifests of every wrong shape. Each ends in a one-line RegistryError (or, through the inspection,
a classification from the name with the reason recorded), within the deadline and with bounded memory."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import socket
import tarfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdebug.cli.main import main
from kdebug.images.catalog import RegistrySettings, load_catalog
from kdebug.images.inspection import classify_container_image
from kdebug.images.reference import parse_image_ref
from kdebug.images.registry import MAX_MANIFEST_BYTES, RegistryClient, RegistryError
from kdebug_emulator import Emulator
from tests.hostile.server import HostileServer, ScriptedHandler, respond, stream, trickle

PLATFORM = "linux/amd64"
MANIFEST_PATH = "/v2/acme/app/manifests/1"
USER, PASSWORD = "puller", "s3cret-pull-pass"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def make_client(
    deadline: float = 2.0, auths: dict[str, Any] | None = None, **settings: Any
) -> RegistryClient:
    settings.setdefault("timeout", 1.0)
    settings.setdefault("retries", 1)
    return RegistryClient(
        settings=RegistrySettings(**settings), docker_auths=auths or {}, deadline_seconds=deadline
    )


def basic_auths(host: str) -> dict[str, Any]:
    return {host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}


def evidence(client: RegistryClient, server: HostileServer) -> dict[str, Any]:
    return client.image_evidence(parse_image_ref(f"{server.host}/acme/app:1"), PLATFORM)


def assert_one_line(exc: RegistryError, *words: str) -> None:
    assert "\n" not in exc.message and len(exc.message) <= 400, exc.message
    for word in words:
        assert word in exc.message, exc.message


def challenge(realm: str) -> Callable[[ScriptedHandler], None]:
    def answer(handler: ScriptedHandler) -> None:
        if handler.headers.get("Authorization", "").startswith("Bearer "):
            respond(handler, 404)
        else:
            header = f'Bearer realm="{realm}",service="registry"'
            respond(handler, 401, b"{}", {"WWW-Authenticate": header})

    return answer


def json_answer(body: Any, status: int = 200) -> Callable[[ScriptedHandler], None]:
    return lambda handler: respond(handler, status, json.dumps(body).encode())


# --- 1. the token realm and redirects ----------------------------------------------------------


def test_a_file_realm_is_refused_and_no_local_file_is_read(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"token": "stolen-local-token"}))
    hostile_server.route("GET", MANIFEST_PATH, challenge(f"file://{secret}#"))
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(), hostile_server)
    assert_one_line(caught.value, hostile_server.host, "realm")
    assert not any("stolen" in seen.headers.get("authorization", "") for seen in hostile_server.seen)


def test_a_plain_http_realm_on_a_remote_host_is_refused(hostile_server: HostileServer) -> None:
    hostile_server.route("GET", MANIFEST_PATH, challenge("http://token.kdebug-test.invalid/token"))
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(auths=basic_auths(hostile_server.host)), hostile_server)
    assert_one_line(caught.value, hostile_server.host, "realm", "https")
    assert PASSWORD not in caught.value.message and time.monotonic() - started < 1.0


def test_basic_credentials_never_go_to_another_plain_http_origin(
    hostile_server: HostileServer, second_server: HostileServer
) -> None:
    """A loopback realm may be plain HTTP, but on another origin it gets no credentials (anonymous token)."""
    second_server.route("GET", "/token", json_answer({"token": "anon-token"}))
    hostile_server.route("GET", MANIFEST_PATH, challenge(second_server.url("/token")))
    with pytest.raises(RegistryError):  # the manifest route answers 404 once a token is sent
        evidence(make_client(auths=basic_auths(hostile_server.host)), hostile_server)
    token_requests = [seen for seen in second_server.seen if seen.path.startswith("/token")]
    assert token_requests and all("authorization" not in seen.headers for seen in token_requests)


def test_the_registry_own_origin_still_gets_basic_credentials_for_a_token(
    hostile_server: HostileServer,
) -> None:
    hostile_server.route("GET", "/token", json_answer({"token": "user-token"}))
    hostile_server.route("GET", MANIFEST_PATH, challenge(hostile_server.url("/token")))
    with pytest.raises(RegistryError):
        evidence(make_client(auths=basic_auths(hostile_server.host)), hostile_server)
    token_requests = [seen for seen in hostile_server.seen if seen.path.startswith("/token")]
    assert token_requests[0].headers["authorization"].startswith("Basic ")


@pytest.fixture
def listener() -> Any:
    """A bare listening socket: a redirect target that must never be connected to."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_a_redirect_to_ftp_is_not_followed(hostile_server: HostileServer, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    target = f"ftp://127.0.0.1:{port}/manifest"
    hostile_server.route("GET", MANIFEST_PATH, lambda h: respond(h, 302, b"", {"Location": target}))
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(), hostile_server)
    assert_one_line(caught.value, hostile_server.host, "redirect")
    assert not connected(listener)


def test_a_redirect_does_not_carry_authorization_to_another_host(
    hostile_server: HostileServer, second_server: HostileServer
) -> None:
    second_server.route("GET", "*", lambda h: respond(h, 404))
    target = second_server.url("/elsewhere")

    def manifest(handler: ScriptedHandler) -> None:
        if handler.headers.get("Authorization"):
            respond(handler, 302, b"", {"Location": target})
        else:
            respond(handler, 401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})

    hostile_server.route("GET", MANIFEST_PATH, manifest)
    with pytest.raises(RegistryError):
        evidence(make_client(auths=basic_auths(hostile_server.host)), hostile_server)
    assert second_server.seen and all("authorization" not in seen.headers for seen in second_server.seen)


# --- 2. resource exhaustion --------------------------------------------------------------------


def test_a_trickled_manifest_ends_by_the_deadline(hostile_server: HostileServer) -> None:
    body = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "0" * 64}, "pad": "x" * 200})
    hostile_server.route("GET", MANIFEST_PATH, lambda h: trickle(h, 200, body.encode(), 0.2))
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(deadline=1.5), hostile_server)
    assert time.monotonic() - started < 1.5 + 0.7
    assert_one_line(caught.value, hostile_server.host, "1.5s")


def test_trickled_headers_end_by_the_deadline(hostile_server: HostileServer) -> None:
    def slow_headers(handler: ScriptedHandler) -> None:
        handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
        for _ in range(400):
            if handler.server.hostile.stopping.wait(0.2):
                return
            handler.wfile.write(b"X-Pad: 1\r\n")
            handler.wfile.flush()

    hostile_server.route("GET", MANIFEST_PATH, slow_headers)
    started = time.monotonic()
    with pytest.raises(RegistryError):
        evidence(make_client(deadline=1.5), hostile_server)
    assert time.monotonic() - started < 1.5 + 0.7


def test_a_declared_oversized_manifest_is_refused_before_its_body(hostile_server: HostileServer) -> None:
    """50 MB of JSON announced by Content-Length, sent slowly: refused on the header, not after 4 MB."""
    hostile_server.route("GET", MANIFEST_PATH, lambda h: stream(h, 200, b"[" * 65536, 50_000_000, pause=0.05))
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(deadline=3.0), hostile_server)
    assert time.monotonic() - started < 1.0
    assert_one_line(caught.value, hostile_server.host, "manifest", str(MAX_MANIFEST_BYTES))


def test_an_undeclared_oversized_manifest_stops_at_the_cap(hostile_server: HostileServer) -> None:
    hostile_server.route(
        "GET", MANIFEST_PATH, lambda h: stream(h, 200, b" " * 65536, 50_000_000, declare_length=False)
    )
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(deadline=5.0), hostile_server)
    assert_one_line(caught.value, "manifest", str(MAX_MANIFEST_BYTES))


def _tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(tarfile.USTAR_FORMAT)


def gzip_layer(parts: list[tuple[bytes, int]], marker: bool = True) -> bytes:
    """gzip of: each (tar header, that many zero bytes padded to a block), then `bin/sh`, then the end."""
    out = io.BytesIO()
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    for header, size in parts:
        out.write(packer.compress(header))
        padded = size + (-size % 512)
        while padded:
            piece = min(padded, len(zeros))
            out.write(packer.compress(zeros[:piece]))
            padded -= piece
    if marker:
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        out.write(packer.compress(link.tobuf(tarfile.USTAR_FORMAT)))
    out.write(packer.compress(bytes(1024)) + packer.flush())
    return out.getvalue()


def serve_image(server: HostileServer, layer: bytes) -> None:
    config = json.dumps({"os": "linux", "architecture": "amd64", "config": {}}).encode()
    digest = lambda data: "sha256:" + hashlib.sha256(data).hexdigest()  # noqa: E731
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config)},
        "layers": [{"mediaType": GZIP_LAYER, "digest": digest(layer), "size": len(layer)}],
    }
    server.route("GET", MANIFEST_PATH, json_answer(manifest))
    server.route("GET", f"/v2/acme/app/blobs/{digest(config)}", lambda h: respond(h, 200, config))
    server.route("GET", f"/v2/acme/app/blobs/{digest(layer)}", lambda h: respond(h, 200, layer))


def peak_traced(action: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_layer_stops_at_the_expanded_cap(hostile_server: HostileServer) -> None:
    """256 MiB of zeros (a few hundred KB gzipped) before `bin/sh`: the cap stops reading before it."""
    serve_image(hostile_server, gzip_layer([(_tar_header("zeros", 256 << 20), 256 << 20)]))
    found, peak = peak_traced(lambda: evidence(make_client(deadline=20.0), hostile_server))
    assert "bin/sh" not in found["files"]["entries"]
    assert found["files"]["layers_capped"] == [0] and found["files"]["layers_read"] == 0
    assert peak < 8 << 20


def test_a_huge_pax_header_is_refused_with_bounded_memory(hostile_server: HostileServer) -> None:
    """A PAX header claiming 160 MiB: tarfile would hold all of it (twice) in memory."""
    serve_image(
        hostile_server, gzip_layer([(_tar_header("././@PaxHeader", 160 << 20, tarfile.XHDTYPE), 160 << 20)])
    )
    found, peak = peak_traced(lambda: evidence(make_client(deadline=20.0), hostile_server))
    assert found["files"]["layers_capped"] == [0] and found["files"]["layers_read"] == 0
    assert peak < 8 << 20


def test_a_huge_gnu_long_name_is_refused_with_bounded_memory(hostile_server: HostileServer) -> None:
    serve_image(
        hostile_server,
        gzip_layer([(_tar_header("././@LongLink", 96 << 20, tarfile.GNUTYPE_LONGNAME), 96 << 20)]),
    )
    found, peak = peak_traced(lambda: evidence(make_client(deadline=20.0), hostile_server))
    assert found["files"]["layers_capped"] == [0]
    assert peak < 8 << 20


def test_a_trickled_layer_ends_by_the_deadline(hostile_server: HostileServer) -> None:
    layer = gzip_layer([(_tar_header("etc/hostname", 5), 5)])
    serve_image(hostile_server, layer)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    hostile_server.route("GET", f"/v2/acme/app/blobs/{digest}", lambda h: trickle(h, 200, layer, 0.2))
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(deadline=1.5), hostile_server)
    assert time.monotonic() - started < 1.5 + 0.7
    assert_one_line(caught.value, hostile_server.host, "1.5s")


def test_an_ordinary_layer_is_still_read(hostile_server: HostileServer) -> None:
    serve_image(hostile_server, gzip_layer([(_tar_header("etc/hostname", 5), 5)]))
    found = evidence(make_client(), hostile_server)
    assert found["files"]["entries"]["bin/sh"] == {"type": "symlink", "target": "busybox"}
    assert found["files"]["layers_capped"] == []


# --- 3. hostile shapes: one table --------------------------------------------------------------

NESTED = b"[" * 100_000 + b"]" * 100_000
ZERO_DIGEST = "sha256:" + "0" * 64
CONFIG = json.dumps({"os": "linux", "architecture": "amd64", "config": {}}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()  # served by the table's registry


def bytes_answer(body: bytes, status: int = 200) -> Callable[[ScriptedHandler], None]:
    return lambda handler: respond(handler, status, body)


def redirect(location: str) -> Callable[[ScriptedHandler], None]:
    return lambda handler: respond(handler, 302, b"", {"Location": location})


def raw(data: bytes) -> Callable[[ScriptedHandler], None]:
    """Bytes on the socket as they are: not necessarily HTTP."""

    def answer(handler: ScriptedHandler) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()

    return answer


HOSTILE_MANIFESTS: list[Any] = [
    pytest.param(json_answer({}), "config", id="empty object"),
    pytest.param(json_answer([1, 2, 3]), "not a JSON object", id="a list"),
    pytest.param(json_answer(None), "not a JSON object", id="null"),
    pytest.param(bytes_answer(NESTED), "not JSON", id="100k levels of nesting"),
    pytest.param(bytes_answer(b"\x89PNG\r\n\x1a\n not json"), "not JSON", id="not JSON"),
    pytest.param(redirect("ftp://127.0.0.1:9/x"), "redirect", id="302 to ftp"),
    pytest.param(redirect("file:///etc/passwd"), "redirect", id="302 to file"),
    pytest.param(redirect("gopher://127.0.0.1:9/x"), "redirect", id="302 to gopher"),
    pytest.param(lambda h: stream(h, 500, b"E" * 65536, 10 << 20), "HTTP 500", id="500 with a 10 MB body"),
    pytest.param(raw(b"SSH-2.0-OpenSSH_9.6\r\n"), "did not answer in HTTP", id="not HTTP at all"),
    pytest.param(raw(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: 1\r\n" * 150 + b"\r\n"), "in HTTP", id="150 headers"),
    pytest.param(
        raw(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 70_000 + b"\r\n\r\n"), "in HTTP", id="a 70 KB header line"
    ),
    pytest.param(json_answer({"manifests": 5}), "index", id="index whose manifests is a number"),
    pytest.param(json_answer({"manifests": [7, "x"]}), "no image for platform", id="index of non-objects"),
    pytest.param(
        json_answer({"config": {"digest": "../../../etc/passwd"}}), "digest", id="config digest is a path"
    ),
    pytest.param(
        json_answer({"config": {"digest": "sha256:" + "a\r\nX: 1"}}), "digest", id="digest with CRLF"
    ),
    pytest.param(json_answer({"config": "sha256:abc"}), "config", id="config is a string"),
    pytest.param(
        json_answer({"config": {"digest": CONFIG_DIGEST}, "layers": "many"}),
        "layers",
        id="layers is a string",
    ),
    pytest.param(
        json_answer({"config": {"digest": CONFIG_DIGEST}, "layers": [{"size": "huge", "digest": 3}]}),
        "layers",
        id="layer entries of the wrong types",
    ),
    pytest.param(
        json_answer(
            {"manifests": [{"platform": {"os": "linux", "architecture": "amd64"}, "digest": "x" * 5000}]}
        ),
        "digest",
        id="index entry with a 5000-character digest",
    ),
    pytest.param(
        json_answer(
            {
                "manifests": [
                    {"platform": {"os": "linux" * 2000, "architecture": "arm"}, "digest": ZERO_DIGEST}
                ]
            }
        ),
        "no image for platform",
        id="index with a 10000-character platform",
    ),
]


@pytest.mark.parametrize(("answer", "words"), HOSTILE_MANIFESTS)
def test_a_hostile_manifest_is_classified_from_the_name_with_the_reason(
    hostile_server: HostileServer, answer: Callable[[ScriptedHandler], None], words: str
) -> None:
    hostile_server.route("GET", MANIFEST_PATH, answer)
    hostile_server.route("GET", f"/v2/acme/app/blobs/{CONFIG_DIGEST}", bytes_answer(CONFIG))
    started = time.monotonic()
    verdict, info = classify_container_image(
        f"{hostile_server.host}/acme/app:1", None, load_catalog({}), make_client(deadline=3.0), PLATFORM
    )
    assert time.monotonic() - started < 3.5
    assert info["consulted"] and verdict is not None
    error = info["error"] or ""
    assert words in error and "\n" not in error and len(error) <= 400, error


HOSTILE_CONFIGS: list[Any] = [
    pytest.param(b"null", id="null"),
    pytest.param(b"[1, 2]", id="a list"),
    pytest.param(NESTED, id="100k levels of nesting"),
    pytest.param(json.dumps({"config": "root", "history": 5}).encode(), id="fields of the wrong types"),
]


@pytest.mark.parametrize("config", HOSTILE_CONFIGS)
def test_a_hostile_config_is_classified_from_the_name_or_the_fields_that_are_sound(
    hostile_server: HostileServer, config: bytes
) -> None:
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": {"digest": digest}, "layers": []}
    hostile_server.route("GET", MANIFEST_PATH, json_answer(manifest))
    hostile_server.route("GET", f"/v2/acme/app/blobs/{digest}", bytes_answer(config))
    verdict, info = classify_container_image(
        f"{hostile_server.host}/acme/app:1", None, load_catalog({}), make_client(), PLATFORM
    )
    assert verdict is not None
    assert info["error"] is None or ("\n" not in info["error"] and "config" in info["error"]), info["error"]


HOSTILE_TOKENS: list[Any] = [
    pytest.param(json_answer([1]), "no token", id="a list"),
    pytest.param(bytes_answer(NESTED), "token service", id="100k levels of nesting"),
    pytest.param(json_answer({"token": "abc\r\nX-Injected: 1"}), "token", id="token with CRLF"),
    pytest.param(json_answer({"token": {"nested": 1}}), "token", id="token is an object"),
    pytest.param(lambda h: stream(h, 200, b" " * 65536, 20 << 20), "token", id="a 20 MB token answer"),
    pytest.param(
        lambda h: trickle(h, 200, b'{"token": "' + b"t" * 100 + b'"}', 0.2), "3s", id="a trickled token"
    ),
]


@pytest.mark.parametrize(("answer", "words"), HOSTILE_TOKENS)
def test_a_hostile_token_answer_is_a_one_line_error(
    hostile_server: HostileServer, answer: Callable[[ScriptedHandler], None], words: str
) -> None:
    hostile_server.route("GET", "/token", answer)
    hostile_server.route("GET", MANIFEST_PATH, challenge(hostile_server.url("/token")))
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        evidence(make_client(deadline=3.0), hostile_server)
    assert time.monotonic() - started < 3.0 + 0.7
    assert_one_line(caught.value, words)


def test_gzip_is_the_layer_format_the_fixtures_build() -> None:
    assert gzip.decompress(gzip_layer([], marker=False)) == bytes(1024)


# --- through `kdebug inspect`: the command goes on, the reason is in the report ------------------

WEB_MANIFEST = "/v2/demo/web/manifests/1.0"


@pytest.fixture(scope="module")
def demo_cluster() -> Any:
    with Emulator(demo=True, runtime="none") as running:
        yield running


@pytest.fixture
def inspect_web(
    demo_cluster: Any,
    hostile_server: HostileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[[], tuple[int, dict[str, Any]]]:
    """`kdebug inspect web -n demo -o json` with the demo's registry mirrored to the hostile server."""
    for name in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("KUBECONFIG", str(demo_cluster.write_kubeconfig(tmp_path / "kubeconfig")))
    config = {
        "mirrors": [{"from": "registry.kdebug.test", "to": hostile_server.host}],
        "registry": {"timeout": 0.5},  # so the image's deadline is 1.5 s
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KDEBUG_CONFIG", str(tmp_path / "config.yaml"))

    def run() -> tuple[int, dict[str, Any]]:
        code = main(["inspect", "web", "-n", "demo", "-o", "json"])
        return code, json.loads(capsys.readouterr().out or "{}")

    return run


INSPECTED: list[Any] = [
    pytest.param(lambda path: challenge(f"file://{path}#"), "realm", id="file realm"),
    pytest.param(
        lambda path: lambda h: trickle(h, 200, b'{"config": {}, "pad": "' + b"x" * 200 + b'"}', 0.2),
        "1.5s",
        id="trickled manifest",
    ),
    pytest.param(lambda path: bytes_answer(NESTED), "not JSON", id="100k levels of nesting"),
]


@pytest.mark.parametrize(("answer", "words"), INSPECTED)
def test_inspect_exits_zero_with_the_reason_and_classifies_from_the_name(
    inspect_web: Callable[[], tuple[int, dict[str, Any]]],
    hostile_server: HostileServer,
    tmp_path: Path,
    answer: Callable[[Path], Callable[[ScriptedHandler], None]],
    words: str,
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"token": "stolen-local-token"}))
    hostile_server.route("GET", WEB_MANIFEST, answer(secret))
    started = time.monotonic()
    code, report = inspect_web()
    assert code == 0 and time.monotonic() - started < 1.5 + 2.0
    web = report["containers"][0]
    error = web["registry"]["error"] or ""
    assert web["registry"]["consulted"] and words in error and "\n" not in error, error
    assert not any("stolen" in seen.headers.get("authorization", "") for seen in hostile_server.seen)
