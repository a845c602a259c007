"""ADAPTER: an OCI distribution API client that reads just enough of an image to classify it.

- Auth: anonymous bearer tokens (the `WWW-Authenticate: Bearer realm=...` flow), basic auth, and
  credentials from the pod's pull secrets (`kubernetes.io/dockerconfigjson`) before ~/.docker/config.json
  ($DOCKER_CONFIG/config.json), then its credential helpers (`credHelpers`, `credsStore`), run only when a
  registry asks for credentials nothing else had. Secrets never reach a message.
- Transport: HTTPS with the system CAs; plain HTTP for loopback hosts and the `registry.insecure` list.
  Every request has a socket timeout, and one image's evidence has an overall deadline; 429/5xx and
  dropped connections are retried (bounded), stalls and refusals are not (they would not get better).
- Reading: manifest (an index is resolved to the platform), config blob (digest checked), then the
  layers smallest first while they fit the byte budget, each streamed once through kdebug.images.layers.
- Cache: on disk under kdebug.config.cache_dir()/registry, by manifest digest (and tag -> digest for a
  few minutes), so a repeat inspection makes no request.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import platform as _platform
import re
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kdebug.errors import ExitCode, KdebugError
from kdebug.images.catalog import RegistrySettings
from kdebug.images.layers import LayerFiles, merge_layers, read_layer
from kdebug.images.reference import DOCKER_HUB, ImageRef
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    import urllib.error

# Only a registry request needs urllib.request: a classification served from the disk cache does not.
urllib_request = lazy_module("urllib.request")
urllib_error = lazy_module("urllib.error")


INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
GZIP_LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
)
TAR_LAYER_TYPES = ("application/vnd.oci.image.layer.v1.tar",)
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
TAG_CACHE_SECONDS = 600
# A registry that could not be reached (no route, no name, refused, timed out) is not asked again for
# this long: an air-gapped or private registry would otherwise cost every `attach` a connection
# attempt, and a resolver timeout (5 s) now and then. Classification falls back to the name meanwhile.
UNREACHABLE_CACHE_SECONDS = 120
CACHE_FORMAT = 1
DOCKER_HUB_CONFIG_KEYS = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
)


class RegistryError(KdebugError):
    """The registry could not answer: unreachable, timed out, refused auth, or has no such image."""

    exit_code = ExitCode.UNREACHABLE
    kind = "registry"


class BudgetExceededError(Exception):
    pass


class DeadlineExpiredError(TimeoutError):
    """One image's overall time ran out: the registry answers, just not fast enough for all of it."""


@dataclass
class ResolvedImage:
    ref: ImageRef
    manifest_digest: str
    index_digest: str | None
    config_digest: str
    layers: list[dict[str, Any]]


@dataclass
class RegistryStats:
    requests: int = 0
    bytes_downloaded: int = 0
    cache_hits: int = 0
    requests_by_kind: dict[str, int] = field(default_factory=dict)


# --- credentials ------------------------------------------------------------------------------


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def load_docker_config_auths(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The `auths` of ~/.docker/config.json; a missing or unreadable file means no credentials."""
    try:
        data = json.loads((path or docker_config_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    auths = data.get("auths") if isinstance(data, dict) else None
    return auths if isinstance(auths, dict) else {}


@dataclass(frozen=True)
class CredentialHelpers:
    """Docker credential helpers from config.json: `credHelpers` per registry, `credsStore` for the rest."""

    per_registry: dict[str, str] = field(default_factory=dict)
    default: str | None = None

    def helper_for(self, host: str) -> str | None:
        keys = DOCKER_HUB_CONFIG_KEYS if host in (DOCKER_HUB, "registry-1.docker.io") else (host,)
        for key, helper in self.per_registry.items():
            if key in keys or re.sub(r"^https?://", "", key).split("/", 1)[0] in keys:
                return helper
        return self.default


HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # `docker-credential-NAME` on PATH, no paths
HELPER_TIMEOUT_S = 10.0
DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"  # the name Docker hands helpers for Docker Hub


def load_credential_helpers(path: Path | None = None) -> CredentialHelpers:
    """`credHelpers` and `credsStore` of ~/.docker/config.json (none when it cannot be read)."""
    try:
        data = json.loads((path or docker_config_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return CredentialHelpers()
    if not isinstance(data, dict):
        return CredentialHelpers()
    helpers = data.get("credHelpers")
    store = data.get("credsStore")
    return CredentialHelpers(
        per_registry={str(k): str(v) for k, v in helpers.items()} if isinstance(helpers, dict) else {},
        default=str(store) if isinstance(store, str) and store else None,
    )


def helper_credentials(
    helper: str, host: str, run: Callable[..., Any] | None = None
) -> dict[str, str] | None:
    """{"username", "password"} from `docker-credential-HELPER get`, or None when it has none for `host`.

    The helper protocol: the server name on stdin, `{"ServerURL", "Username", "Secret"}` on stdout, a
    non-zero exit for "not found". An identity token (Username `<token>`, for OAuth refresh flows) is
    not supported and counts as none. The helper's own messages are not shown: they may name secrets.
    """
    if not HELPER_NAME.match(helper):
        return None
    server = DOCKER_HUB_SERVER_URL if host in (DOCKER_HUB, "registry-1.docker.io") else host
    try:
        done = (run or subprocess.run)(
            [f"docker-credential-{helper}", "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_S,
            check=False,
        )
        answer = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if not isinstance(answer, dict):
        return None
    user, secret = answer.get("Username"), answer.get("Secret")
    if not user or not secret or user == "<token>":
        return None
    return {"username": str(user), "password": str(secret)}


def auths_from_pull_secret(secret: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`kubernetes.io/dockerconfigjson` (`.dockerconfigjson`) or legacy `kubernetes.io/dockercfg` secrets."""
    data = secret.get("data") or {}
    for key, wrapped in ((".dockerconfigjson", True), (".dockercfg", False)):
        if key in data:
            try:
                decoded = json.loads(base64.b64decode(data[key]))
            except (ValueError, TypeError):
                return {}
            auths = decoded.get("auths", {}) if wrapped else decoded
            return auths if isinstance(auths, dict) else {}
    return {}


def credentials_for(host: str, auths: dict[str, dict[str, Any]]) -> dict[str, str] | None:
    """{"username", "password"} or {"registrytoken"} for a registry host, matching Docker's key forms."""
    keys = DOCKER_HUB_CONFIG_KEYS if host in (DOCKER_HUB, "registry-1.docker.io") else (host,)
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        bare = re.sub(r"^https?://", "", key).split("/", 1)[0]
        if key in keys or bare in keys:
            return _entry_credentials(entry)
    return None


def _entry_credentials(entry: dict[str, Any]) -> dict[str, str] | None:
    if entry.get("registrytoken"):
        return {"registrytoken": str(entry["registrytoken"])}
    if entry.get("username") and entry.get("password"):
        return {"username": str(entry["username"]), "password": str(entry["password"])}
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return {"username": user, "password": password}
    return None


# --- the on-disk cache ------------------------------------------------------------------------


class EvidenceCache:
    """JSON files by digest; tag lookups expire after `tag_seconds`. Corrupt entries are ignored."""

    def __init__(
        self,
        root: Path,
        clock: Callable[[], float] = time.time,
        tag_seconds: float = TAG_CACHE_SECONDS,
        unreachable_seconds: float = UNREACHABLE_CACHE_SECONDS,
    ):
        self.root = root
        self.clock = clock
        self.tag_seconds = tag_seconds
        self.unreachable_seconds = unreachable_seconds

    def _path(self, kind: str, key: str) -> Path:
        safe = hashlib.sha256(key.encode()).hexdigest() if kind == "tags" else key.replace(":", "-")
        return self.root / kind / f"{safe}.json"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("format") == CACHE_FORMAT else None

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        try:
            # 0700/0600 whatever the umask: which images (of private registries) were inspected is private
            for directory in (self.root.parent, self.root, path.parent):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with os.fdopen(
                os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8"
            ) as out:
                out.write(json.dumps({**data, "format": CACHE_FORMAT}))
            tmp.replace(path)
        except OSError:
            pass  # a cache that cannot be written only costs requests next time

    def get_image(self, digest: str) -> dict[str, Any] | None:
        return self._read(self._path("images", digest))

    def put_image(self, digest: str, data: dict[str, Any]) -> None:
        self._write(self._path("images", digest), data)

    def get_tag(self, key: str) -> str | None:
        data = self._read(self._path("tags", key))
        if not data or self.clock() - float(data.get("at", 0)) > self.tag_seconds:
            return None
        return str(data["digest"])

    def put_tag(self, key: str, digest: str) -> None:
        self._write(self._path("tags", key), {"digest": digest, "at": self.clock()})

    def unreachable(self, host: str) -> tuple[str, float] | None:
        """(why, seconds ago) when `host` could not be reached within `unreachable_seconds`."""
        data = self._read(self._path("tags", f"unreachable {host}"))
        if not data:
            return None
        age = self.clock() - float(data.get("at", 0))
        return (str(data.get("reason", "")), age) if 0 <= age <= self.unreachable_seconds else None

    def put_unreachable(self, host: str, reason: str) -> None:
        self._write(self._path("tags", f"unreachable {host}"), {"reason": reason, "at": self.clock()})

    def clear_unreachable(self, host: str) -> None:
        with contextlib.suppress(OSError):
            self._path("tags", f"unreachable {host}").unlink()


# --- the client -------------------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float]):
        self.clock = clock
        self.end = clock() + seconds
        self.seconds = seconds

    def remaining(self) -> float:
        return self.end - self.clock()


class RegistryClient:
    def __init__(
        self,
        settings: RegistrySettings | None = None,
        cache: EvidenceCache | None = None,
        docker_auths: dict[str, dict[str, Any]] | None = None,
        credential_helpers: CredentialHelpers | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        deadline_seconds: float | None = None,
    ):
        self.settings = settings or RegistrySettings()
        self.cache = cache
        self.docker_auths = load_docker_config_auths() if docker_auths is None else docker_auths
        if credential_helpers is None:  # explicit auths (tests, push) mean no helpers unless given too
            credential_helpers = load_credential_helpers() if docker_auths is None else CredentialHelpers()
        self.credential_helpers = credential_helpers
        self._helper_answers: dict[str, dict[str, str] | None] = {}  # one helper run per registry
        self.monotonic = monotonic
        self.sleep = sleep
        self.deadline_seconds = deadline_seconds or self.settings.timeout * 3
        self.stats = RegistryStats()
        self._tokens: dict[tuple[str, str], str] = {}
        self._ssl_context: ssl.SSLContext | None = None

    @property
    def _ssl(self) -> ssl.SSLContext:
        # loading the system CAs is slow: only done when an HTTPS registry is really contacted
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    # -- public: evidence for classification -------------------------------------------------------

    def image_evidence(
        self,
        ref: ImageRef,
        platform: str,
        digest_hint: str | None = None,
        pull_auths: dict[str, dict[str, Any]] | None = None,
        want_files: Callable[[dict[str, Any]], bool] = lambda config: True,
    ) -> dict[str, Any]:
        """Manifest digest, config, history, files, from_cache; RegistryError if it cannot answer."""
        deadline = _Deadline(self.deadline_seconds, self.monotonic)
        auths = {**self.docker_auths, **(pull_auths or {})}
        cached = self._cached_evidence(ref, platform, digest_hint)
        if cached is not None and (cached.get("files") is not None or not want_files(cached["image_config"])):
            self.stats.cache_hits += 1
            return _evidence_view(cached, from_cache=True)
        resolved = self.resolve(ref, platform, auths, deadline, digest_hint)
        image_config = self.fetch_config(resolved, auths, deadline)
        record: dict[str, Any] = {
            "manifest_digest": resolved.manifest_digest,
            "image_config": image_config,
            "files": None,
            "layers": resolved.layers,
        }
        if want_files(image_config):
            record["files"] = self.read_files(resolved, auths, deadline)
        if self.cache is not None:
            self.cache.put_image(resolved.manifest_digest, record)
        return _evidence_view(record, from_cache=False)

    def _cached_evidence(
        self, ref: ImageRef, platform: str, digest_hint: str | None
    ) -> dict[str, Any] | None:
        if self.cache is None:
            return None
        for digest in filter(None, (ref.digest, digest_hint, self.cache.get_tag(_tag_key(ref, platform)))):
            record = self.cache.get_image(digest)
            if record and record.get("platforms"):  # an index: follow it to the platform's manifest
                record = self.cache.get_image(record["platforms"].get(platform, ""))
            if record and "image_config" in record:
                return record
        return None

    # -- manifests, config, layers -----------------------------------------------------------------

    def resolve(
        self,
        ref: ImageRef,
        platform: str,
        auths: dict[str, Any],
        deadline: _Deadline,
        digest_hint: str | None = None,
    ) -> ResolvedImage:
        body, media_type, digest = self._get_first_manifest(ref, auths, deadline, digest_hint)
        index_digest = None
        if media_type in INDEX_TYPES or "manifests" in body:
            index_digest = digest
            child = pick_platform(body, platform)
            if child is None:
                available = ", ".join(
                    sorted(_platform_string(m.get("platform") or {}) for m in body["manifests"])
                )
                raise RegistryError(
                    f"{ref} has no image for platform {platform} (it has: {available or 'none'})"
                )
            if self.cache is not None:
                self.cache.put_image(digest, {"platforms": {platform: child["digest"]}})
            body, media_type, digest = self._get_manifest(ref, child["digest"], auths, deadline)
        if self.cache is not None and not ref.digest:
            self.cache.put_tag(_tag_key(ref, platform), index_digest or digest)
        config = body.get("config") or {}
        if not config.get("digest"):
            raise RegistryError(f"{ref}: the registry sent a manifest without a config ({media_type})")
        return ResolvedImage(
            ref=ref,
            manifest_digest=digest,
            index_digest=index_digest,
            config_digest=config["digest"],
            layers=list(body.get("layers") or []),
        )

    def _get_first_manifest(
        self, ref: ImageRef, auths: dict[str, Any], deadline: _Deadline, digest_hint: str | None
    ) -> tuple[dict[str, Any], str, str]:
        """By the running digest when known; a hint the registry does not know (some runtimes report
        the config digest, a mirror may hold other digests) falls back to the reference."""
        if digest_hint and not ref.digest:
            try:
                return self._get_manifest(ref, digest_hint, auths, deadline)
            except RegistryError as exc:
                if exc.exit_code != ExitCode.NOT_FOUND:
                    raise
        return self._get_manifest(ref, ref.reference, auths, deadline)

    def _get_manifest(
        self, ref: ImageRef, reference: str, auths: dict[str, Any], deadline: _Deadline
    ) -> tuple[dict[str, Any], str, str]:
        path = f"/v2/{ref.repository}/manifests/{reference}"
        with self._request(
            "GET", ref, path, auths, deadline, headers={"Accept": ACCEPT}, kind="manifest"
        ) as resp:
            raw = _read_limited(resp, MAX_MANIFEST_BYTES)
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        self.stats.bytes_downloaded += len(raw)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{ref}: manifest digest mismatch (asked {reference}, got {digest})")
        try:
            body = json.loads(raw)
        except ValueError:
            raise RegistryError(f"{ref}: the registry sent a manifest that is not JSON") from None
        return body, body.get("mediaType") or media_type, digest

    def fetch_config(
        self, resolved: ResolvedImage, auths: dict[str, Any], deadline: _Deadline
    ) -> dict[str, Any]:
        raw = self._get_blob_bytes(resolved.ref, resolved.config_digest, auths, deadline, MAX_CONFIG_BYTES)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != resolved.config_digest:
            raise RegistryError(f"{resolved.ref}: config blob digest mismatch")
        try:
            data = json.loads(raw)
        except ValueError:
            raise RegistryError(f"{resolved.ref}: the image config is not JSON") from None
        return {
            "config": data.get("config") or {},
            "history": data.get("history") or [],
            "os": data.get("os"),
            "architecture": data.get("architecture"),
        }

    def read_files(
        self, resolved: ResolvedImage, auths: dict[str, Any], deadline: _Deadline
    ) -> dict[str, Any]:
        """Stream layers smallest first within the byte budget; layers that do not fit stay unread."""
        budget = self.settings.byte_budget
        per_layer: list[LayerFiles | None] = [None] * len(resolved.layers)
        order = sorted(range(len(resolved.layers)), key=lambda i: int(resolved.layers[i].get("size") or 0))
        skipped = []
        for index in order:
            layer = resolved.layers[index]
            size = int(layer.get("size") or 0)
            media_type = layer.get("mediaType", "")
            if size > budget or media_type not in GZIP_LAYER_TYPES + TAR_LAYER_TYPES:
                skipped.append(index)
                continue
            per_layer[index] = self._read_layer(resolved.ref, layer, auths, deadline, budget)
            budget -= size
        files = merge_layers(per_layer)
        files["bytes_budget"] = self.settings.byte_budget
        files["layers_skipped"] = skipped
        return files

    def _read_layer(
        self, ref: ImageRef, layer: dict[str, Any], auths: dict[str, Any], deadline: _Deadline, budget: int
    ) -> LayerFiles | None:
        path = f"/v2/{ref.repository}/blobs/{layer['digest']}"
        with self._request("GET", ref, path, auths, deadline, kind="layer") as resp:
            counted = _CountingReader(resp, budget, self, deadline)
            try:
                return read_layer(counted, compressed=layer.get("mediaType") in GZIP_LAYER_TYPES)
            except BudgetExceededError:
                return None
            except (OSError, EOFError) as exc:
                if isinstance(exc, TimeoutError | socket.timeout):
                    raise RegistryError(f"registry {ref.registry} stalled while sending a layer") from None
                return None
            except Exception as exc:  # tarfile.TarError and zlib errors: an unreadable layer is skipped
                if type(exc).__module__ in ("tarfile", "zlib"):
                    return None
                raise

    def _get_blob_bytes(
        self, ref: ImageRef, digest: str, auths: dict[str, Any], deadline: _Deadline, limit: int
    ) -> bytes:
        with self._request(
            "GET", ref, f"/v2/{ref.repository}/blobs/{digest}", auths, deadline, kind="blob"
        ) as resp:
            raw = _read_limited(resp, limit)
        self.stats.bytes_downloaded += len(raw)
        return raw

    # -- pushing (tests and the demo build images with kdebug_emulator.ocibuild) ----------------------------

    def push_blob(self, ref: ImageRef, data: bytes, auths: dict[str, Any] | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        auths = {**self.docker_auths, **(auths or {})}
        deadline = _Deadline(max(self.deadline_seconds, 60.0), self.monotonic)
        path = f"/v2/{ref.repository}/blobs/{digest}"
        if self._exists(ref, path, auths, deadline):
            return digest
        start = f"/v2/{ref.repository}/blobs/uploads/"
        with self._request("POST", ref, start, auths, deadline, kind="upload", push=True, ok=(202,)) as resp:
            location = resp.headers.get("Location", "")
        upload = urllib.parse.urljoin(self._base(ref) + start, location)
        upload += ("&" if "?" in upload else "?") + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        with self._request(
            "PUT",
            ref,
            upload,
            auths,
            deadline,
            headers=headers,
            body=data,
            kind="upload",
            push=True,
            ok=(201,),
        ):
            pass
        return digest

    def push_manifest(
        self, ref: ImageRef, body: bytes, media_type: str, reference: str, auths: dict[str, Any] | None = None
    ) -> str:
        auths = {**self.docker_auths, **(auths or {})}
        deadline = _Deadline(max(self.deadline_seconds, 30.0), self.monotonic)
        path = f"/v2/{ref.repository}/manifests/{reference}"
        with self._request(
            "PUT",
            ref,
            path,
            auths,
            deadline,
            headers={"Content-Type": media_type},
            body=body,
            kind="manifest",
            push=True,
            ok=(201,),
        ):
            pass
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def _exists(self, ref: ImageRef, path: str, auths: dict[str, Any], deadline: _Deadline) -> bool:
        try:
            with self._request("HEAD", ref, path, auths, deadline, kind="blob", push=True):
                return True
        except RegistryError as exc:
            if exc.exit_code == ExitCode.NOT_FOUND:
                return False
            raise

    # -- the choke point ---------------------------------------------------------------------------

    def _base(self, ref: ImageRef) -> str:
        host = ref.api_host
        return f"{'http' if self.is_plain_http(host) else 'https'}://{host}"

    def is_plain_http(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return host in self.settings.insecure or name in ("localhost", "[::1]") or name.startswith("127.")

    def _request(
        self,
        method: str,
        ref: ImageRef,
        path: str,
        auths: dict[str, Any],
        deadline: _Deadline,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        kind: str = "other",
        push: bool = False,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        """Send with auth (answering one 401 challenge) and bounded retries; returns an open response."""
        remembered = self.cache.unreachable(ref.api_host) if self.cache is not None and not push else None
        if remembered is not None:
            reason, age = remembered
            raise RegistryError(
                f"registry {ref.registry} unreachable {age:.0f}s ago ({reason}); "
                f"not asked again for {UNREACHABLE_CACHE_SECONDS}s"
            )
        url = path if path.startswith("http") else self._base(ref) + path
        scope_actions = "pull,push" if push else "pull"
        challenges = 0  # a second one only after an anonymous token, when a credential helper may help
        anonymous = False
        attempt = 0
        while True:
            attempt += 1
            auth_header = self._auth_header(ref, auths, scope_actions)
            try:
                resp = self._open(method, url, headers or {}, body, auth_header, deadline, kind)
            except urllib_error.HTTPError as exc:
                status = exc.code
                retry_with_helper = challenges == 1 and anonymous and self._helper_may_help(ref, auths)
                if status == 401 and (challenges == 0 or retry_with_helper):
                    challenges += 1
                    anonymous = self._answer_challenge(
                        ref,
                        exc.headers.get("WWW-Authenticate", ""),
                        auths,
                        scope_actions,
                        deadline,
                        use_helper=challenges > 1,
                    )
                    exc.close()
                    attempt -= 1  # answering the challenge is not a retry
                    continue
                if (
                    status in RETRY_STATUSES
                    and attempt <= self.settings.retries
                    and deadline.remaining() > 0.5
                ):
                    exc.close()
                    self.sleep(min(0.2 * attempt, max(deadline.remaining() / 4, 0)))
                    continue
                raise self._http_error(ref, status, exc, method) from None
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
                if attempt <= self.settings.retries and deadline.remaining() > 0.5:
                    continue
                raise RegistryError(
                    f"registry {ref.registry} dropped the connection ({type(exc).__name__})"
                ) from None
            except DeadlineExpiredError:
                raise RegistryError(
                    f"registry {ref.registry}: the image's evidence took longer than "
                    f"{self.deadline_seconds:g}s (timeout)"
                ) from None
            except TimeoutError:
                self._remember_unreachable(ref, "timed out")
                raise RegistryError(
                    f"registry {ref.registry} did not answer within {self.settings.timeout:g}s (timeout)"
                ) from None
            except urllib_error.URLError as exc:
                self._remember_unreachable(ref, _reason_text(exc.reason))
                raise RegistryError(
                    f"registry {ref.registry} unreachable: {_reason_text(exc.reason)}"
                ) from None
            except OSError as exc:
                self._remember_unreachable(ref, exc.strerror or type(exc).__name__)
                raise RegistryError(
                    f"registry {ref.registry} unreachable: {exc.strerror or type(exc).__name__}"
                ) from None
            if self.cache is not None and push:
                self.cache.clear_unreachable(ref.api_host)  # it answers now (a push is never refused by it)
            if resp.status not in ok and not (200 <= resp.status < 300):
                resp.close()
                raise RegistryError(f"registry {ref.registry}: unexpected HTTP {resp.status} for {method}")
            return resp

    def _remember_unreachable(self, ref: ImageRef, reason: str) -> None:
        if self.cache is not None:
            self.cache.put_unreachable(ref.api_host, reason)

    def _open(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        auth: str | None,
        deadline: _Deadline,
        kind: str,
    ) -> Any:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise DeadlineExpiredError
        request = urllib_request.Request(url, data=body, method=method, headers=headers)
        if auth:
            request.add_unredirected_header("Authorization", auth)  # never forwarded to a redirect target
        self.stats.requests += 1
        self.stats.requests_by_kind[kind] = self.stats.requests_by_kind.get(kind, 0) + 1
        context = self._ssl if url.startswith("https") else None
        return urllib_request.urlopen(request, timeout=min(self.settings.timeout, remaining), context=context)

    def _credentials_from_helper(self, host: str) -> dict[str, str] | None:
        if host not in self._helper_answers:
            helper = self.credential_helpers.helper_for(host)
            self._helper_answers[host] = helper_credentials(helper, host) if helper else None
        return self._helper_answers[host]

    def _auth_header(self, ref: ImageRef, auths: dict[str, Any], actions: str) -> str | None:
        token = self._tokens.get((ref.api_host, f"{ref.repository}:{actions}"))
        if token:
            return token
        return self._tokens.get((ref.api_host, "*"))

    def _helper_may_help(self, ref: ImageRef, auths: dict[str, Any]) -> bool:
        """True when the last answer was an anonymous token and a credential helper could do better."""
        return (
            credentials_for(ref.registry, auths) is None
            and self.credential_helpers.helper_for(ref.registry) is not None
        )

    def _answer_challenge(
        self,
        ref: ImageRef,
        header: str,
        auths: dict[str, Any],
        actions: str,
        deadline: _Deadline,
        use_helper: bool = False,
    ) -> bool:
        """Answer a 401's challenge; True when the answer is an anonymous token. A bearer challenge
        without credentials of our own gets an anonymous token first (public images need no helper
        run, no keychain prompt); the credential helper is asked for basic challenges, and when the
        anonymous way was refused."""
        scheme, params = parse_www_authenticate(header)
        creds = credentials_for(ref.registry, auths)
        if creds is None and (use_helper or scheme == "basic"):
            creds = self._credentials_from_helper(ref.registry)
        if scheme == "basic":
            if not creds or "username" not in creds:
                raise RegistryError(_no_credentials(ref), exit_code=ExitCode.PERMISSION_DENIED)
            self._tokens[(ref.api_host, "*")] = _basic(creds)
            return False
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(
                f"registry {ref.registry} asks for unsupported authentication {scheme or '(none)'}"
            )
        if creds and "registrytoken" in creds:
            self._tokens[(ref.api_host, f"{ref.repository}:{actions}")] = f"Bearer {creds['registrytoken']}"
            return False
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or f"repository:{ref.repository}:{actions}"
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
        auth = _basic(creds) if creds and "username" in creds else None
        try:
            with self._open("GET", url, {}, None, auth, deadline, "token") as resp:
                data = json.loads(_read_limited(resp, 1024 * 1024))
        except urllib_error.HTTPError as exc:
            if exc.code in (401, 403) and not creds and not use_helper and self._helper_may_help(ref, auths):
                exc.close()  # the token service wants credentials: ask the helper for them
                return self._answer_challenge(ref, header, auths, actions, deadline, use_helper=True)
            if exc.code in (401, 403):
                raise RegistryError(
                    _no_credentials(ref)
                    if not creds
                    else f"registry {ref.registry} refused the credentials kdebug found",
                    exit_code=ExitCode.PERMISSION_DENIED,
                ) from None
            raise RegistryError(f"registry {ref.registry}: token service answered HTTP {exc.code}") from None
        except (OSError, ValueError, urllib_error.URLError) as exc:
            raise RegistryError(
                f"registry {ref.registry}: token service failed ({type(exc).__name__})"
            ) from None
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError(f"registry {ref.registry}: token service sent no token")
        self._tokens[(ref.api_host, f"{ref.repository}:{actions}")] = f"Bearer {token}"
        return auth is None

    def _http_error(
        self, ref: ImageRef, status: int, exc: urllib.error.HTTPError, method: str
    ) -> RegistryError:
        exc.close()
        if status == 404:
            return RegistryError(f"{ref} not found in registry {ref.registry}", exit_code=ExitCode.NOT_FOUND)
        if status in (401, 403):
            return RegistryError(
                f"registry {ref.registry} denied access to {ref.repository} (HTTP {status})",
                exit_code=ExitCode.PERMISSION_DENIED,
            )
        return RegistryError(f"registry {ref.registry}: HTTP {status} for {method} (after retries)")


class _CountingReader:
    """A file-like view of a response that counts bytes and stops at the budget or the deadline."""

    def __init__(self, resp: IO[bytes], budget: int, client: RegistryClient, deadline: _Deadline):
        self.resp = resp
        self.budget = budget
        self.client = client
        self.deadline = deadline
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        if self.deadline.remaining() <= 0:
            raise DeadlineExpiredError
        chunk = self.resp.read(size if size and size > 0 else 65536)
        self.read_bytes += len(chunk)
        self.client.stats.bytes_downloaded += len(chunk)
        if self.read_bytes > self.budget:
            raise BudgetExceededError
        return chunk


def pick_platform(index: dict[str, Any], platform: str) -> dict[str, Any] | None:
    """The index entry for `os/arch[/variant]`; attestation manifests (os unknown) never match."""
    wanted_os, _, rest = platform.partition("/")
    wanted_arch, _, wanted_variant = rest.partition("/")
    candidates = []
    for entry in index.get("manifests") or []:
        plat = entry.get("platform") or {}
        same = plat.get("os") == wanted_os and plat.get("architecture") == wanted_arch
        if same and (not wanted_variant or plat.get("variant") in (None, wanted_variant)):
            candidates.append(entry)
    exact = [c for c in candidates if (c.get("platform") or {}).get("variant") == (wanted_variant or None)]
    return (exact or candidates or [None])[0]


def parse_www_authenticate(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _platform_string(plat: dict[str, Any]) -> str:
    text = f"{plat.get('os', '?')}/{plat.get('architecture', '?')}"
    return text + (f"/{plat['variant']}" if plat.get("variant") else "")


def _tag_key(ref: ImageRef, platform: str) -> str:
    return f"{ref.name}:{ref.tag}|{platform}"


def _evidence_view(record: dict[str, Any], from_cache: bool) -> dict[str, Any]:
    image_config = record.get("image_config") or {}
    return {
        "manifest_digest": record.get("manifest_digest"),
        "config": image_config.get("config") or {},
        "history": image_config.get("history") or [],
        "files": record.get("files"),
        "from_cache": from_cache,
        "size": sum(int(layer.get("size") or 0) for layer in record.get("layers") or []),
    }


def _read_limited(resp: Any, limit: int) -> bytes:
    data = resp.read(limit + 1)
    if len(data) > limit:
        raise RegistryError(f"registry sent more than {limit} bytes where a small document was expected")
    return data


def _basic(creds: dict[str, str]) -> str:
    raw = f"{creds['username']}:{creds['password']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _no_credentials(ref: ImageRef) -> str:
    return (
        f"registry {ref.registry} requires authentication and kdebug found no credentials for it "
        "(pod imagePullSecrets, ~/.docker/config.json and its credential helpers)"
    )


def _reason_text(reason: Any) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or 'handshake failed'})"
    if isinstance(reason, OSError):
        return (reason.strerror or str(reason)).lower()
    return str(reason)


def default_platform() -> str:
    machine = _platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return f"linux/{arch}"
