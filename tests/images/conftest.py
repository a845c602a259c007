"""Fixtures for the image tests: real `docker-registry` processes with sample images, an emulator."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kdebug.images.catalog import RegistrySettings, load_catalog
from kdebug.images.reference import ImageRef, parse_image_ref
from kdebug.images.registry import EvidenceCache, RegistryClient
from kdebug_emulator import localregistry, ocibuild
from tests.images.registries import AUTH_PASSWORD, AUTH_USER, basic_auths

JAVA_PAYLOAD_BYTES = 40 * 1024 * 1024  # bigger than the 32 MiB budget, like a JDK's modules file


@dataclass
class Pushed:
    ref: ImageRef
    image: ocibuild.OciImage
    digest: str


def sample_images() -> dict[str, ocibuild.OciImage]:
    """Every sample layout, under names that say nothing about the base."""
    return {
        "scratch": ocibuild.scratch_app_image(),
        "distroless-static": ocibuild.distroless_image("static"),
        "distroless-base-nonroot": ocibuild.distroless_image("base", nonroot=True),
        "distroless-static-debug": ocibuild.distroless_image("static", debug=True),
        "distroless-app": ocibuild.distroless_app_image(),
        "wolfi": ocibuild.wolfi_image("nginx"),
        "wolfi-dev": ocibuild.wolfi_image("nginx", dev=True),
        "alpine": ocibuild.alpine_image(),
        "debian-slim": ocibuild.debian_slim_image(),
        "debian-app-user": ocibuild.debian_slim_image(app_user="app", drop_bash=True),
    }


@pytest.fixture(scope="session")
def registry() -> Iterator[localregistry.LocalRegistry]:
    if not localregistry.available():
        pytest.skip("Debian's docker-registry is not installed")
    with localregistry.start_registry() as running:
        yield running


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[localregistry.LocalRegistry]:
    if not localregistry.available():
        pytest.skip("Debian's docker-registry is not installed")
    with localregistry.start_registry(users={AUTH_USER: AUTH_PASSWORD}) as running:
        yield running


@pytest.fixture(scope="session")
def private_image(auth_registry: localregistry.LocalRegistry) -> Any:
    """A distroless static nonroot image that only AUTH_USER may pull."""
    ref = parse_image_ref(f"{auth_registry.host}/private/app:1")
    client = RegistryClient(docker_auths=basic_auths(auth_registry.host))
    ocibuild.push_image(client, ref, ocibuild.distroless_image("static", nonroot=True), "1")
    return ref


@pytest.fixture(scope="session")
def pushed(registry: localregistry.LocalRegistry) -> dict[str, Pushed]:
    client = RegistryClient(docker_auths={})
    result = {}
    for name, image in sample_images().items():
        ref = parse_image_ref(f"{registry.host}/acme/{name}:1.0")
        result[name] = Pushed(ref, image, ocibuild.push_image(client, ref, image, "1.0"))
    return result


@pytest.fixture(scope="session")
def pushed_java(registry: localregistry.LocalRegistry) -> Pushed:
    image = ocibuild.distroless_image("java", nonroot=True, java_payload=JAVA_PAYLOAD_BYTES)
    ref = parse_image_ref(f"{registry.host}/acme/payments-java:2.1")
    return Pushed(ref, image, ocibuild.push_image(RegistryClient(docker_auths={}), ref, image, "2.1"))


@pytest.fixture(scope="session")
def pushed_index(registry: localregistry.LocalRegistry) -> Pushed:
    """A two-platform index: amd64 has no shell (distroless static), arm64 has one (the debug variant)."""
    amd64 = ocibuild.distroless_image("static", arch="amd64")
    arm64 = ocibuild.distroless_image("static", debug=True, arch="arm64")
    ref = parse_image_ref(f"{registry.host}/acme/multiarch:3")
    digest = ocibuild.push_index(RegistryClient(docker_auths={}), ref, [amd64, arm64], "3")
    return Pushed(ref, amd64, digest)


@pytest.fixture
def make_client(tmp_path: Path) -> Callable[..., RegistryClient]:
    """A client with its own cache dir and no ~/.docker credentials unless given."""

    def make(cache: bool = True, auths: dict[str, Any] | None = None, **settings: Any) -> RegistryClient:
        store = EvidenceCache(tmp_path / "cache") if cache else None
        return RegistryClient(settings=RegistrySettings(**settings), cache=store, docker_auths=auths or {})

    return make


@pytest.fixture
def catalog_for() -> Callable[..., Any]:
    def build(config: dict[str, Any] | None = None) -> Any:
        return load_catalog(config or {})

    return build


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, XDG dirs and DOCKER_CONFIG in a temp dir: no real config, cache or credentials leak in."""
    for name in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("KDEBUG_CONFIG", raising=False)
    return tmp_path


class StallingServer:
    """Accepts TCP connections and never answers: a registry that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def stalling_server() -> Iterator[StallingServer]:
    server = StallingServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    from kdebug_emulator import Emulator

    with Emulator(demo=True, runtime="none") as running:
        yield running


@pytest.fixture
def kube(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from kdebug.kube.client import connect

    path = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return connect(str(path))


class BearerProxy:
    """A registry front that speaks the bearer-token flow (like Docker Hub) and forwards to a real registry.

    `/token` hands out a token (anonymous, or only for `require_user` when set); `/v2/...` without
    that token answers 401 with a `WWW-Authenticate: Bearer realm=...` challenge. Counts requests.
    """

    TOKEN = "tok-" + "x" * 20

    def __init__(self, upstream: str, require_user: tuple[str, str] | None = None) -> None:
        import http.server
        import urllib.error
        import urllib.request

        proxy = self
        self.requests: list[str] = []
        self.require_user = require_user
        self.fail_next = 0  # answer this many /v2/ requests with 503 first

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                proxy.requests.append(self.path)
                if self.path.startswith("/token"):
                    return self._token()
                if self.headers.get("Authorization") != f"Bearer {proxy.TOKEN}":
                    return self._challenge()
                if proxy.fail_next > 0:
                    proxy.fail_next -= 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                accept = self.headers.get("Accept", "*/*")
                request = urllib.request.Request(upstream + self.path, headers={"Accept": accept})
                try:
                    resp = urllib.request.urlopen(request, timeout=5)
                except urllib.error.HTTPError as exc:
                    resp = exc
                with resp:
                    body = resp.read()
                    self.send_response(resp.status)
                    self.send_header(
                        "Content-Type", resp.headers.get("Content-Type", "application/octet-stream")
                    )
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                return None

            def _token(self) -> None:
                if proxy.require_user:
                    expected = base64.b64encode(":".join(proxy.require_user).encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {expected}":
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = json.dumps({"token": proxy.TOKEN}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _challenge(self) -> None:
                realm = f"http://127.0.0.1:{proxy.port}/token"
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="bench.local"')
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bearer_proxy(registry: localregistry.LocalRegistry) -> Iterator[BearerProxy]:
    proxy = BearerProxy(registry.url)
    yield proxy
    proxy.close()


@pytest.fixture
def bearer_proxy_with_user(registry: localregistry.LocalRegistry) -> Iterator[BearerProxy]:
    proxy = BearerProxy(registry.url, require_user=(AUTH_USER, AUTH_PASSWORD))
    yield proxy
    proxy.close()
