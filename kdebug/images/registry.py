"""ADAPTER: an OCI distribution API client that reads just enough of an image to classify it.

- Auth: anonymous bearer tokens (the `WWW-Authenticate: Bearer realm=...` flow), basic auth, and
  credentials from the pod's pull secrets (`kubernetes.io/dockerconfigjson`) before ~/.docker/config.json
  ($DOCKER_CONFIG/config.json), then its credential helpers (`credHelpers`, `credsStore`), run only when a
  registry asks for credentials nothing else had. Secrets never reach a message.
- Transport: HTTPS with the system CAs; plain HTTP for loopback hosts and the `registry.insecure` list.
  Every request has a socket timeout, and one image's evidence has an overall deadline that a watchdog
  enforces on every socket (a trickled body or header ends on time); 429/5xx and dropped connections
  are retried (bounded), stalls and refusals are not (they would not get better).
- Trust: the registry's answers are its word only. A token realm must be https (plain http only where
  the registry may be plain http), basic credentials never go to another origin over plain http,
  redirects go to http(s) only and carry no Authorization; manifests, configs and token answers are
  capped in size and checked in shape; server text in messages is capped (docs/security.md).
- Reading: manifest (an index is resolved to the platform), config blob (digest checked), then the
  layers smallest first while they fit the byte budget, each streamed once through kdebug.images.layers.
- Cache: on disk under kdebug.config.cache_dir()/registry, by manifest digest (and tag -> digest for a
  few minutes), so a repeat inspection makes no request.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import platform as _platform
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kdebug.errors import ExitCode, KdebugError
from kdebug.images.catalog import RegistrySettings
from kdebug.images.layers import LayerCapError, LayerFiles, expanded_cap, merge_layers, read_layer
from kdebug.images.reference import DOCKER_HUB, ImageRef
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    import urllib.error

# Only a registry request needs these: a classification served from the disk cache does not.
urllib_request = lazy_module("urllib.request")
urllib_error = lazy_module("urllib.error")
http_client = lazy_module("http.client")


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
MAX_TOKEN_BYTES = 1024 * 1024
MAX_SERVER_TEXT = 120  # characters of server-chosen text (media types, platforms, realms) in a message
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
TOKEN = re.compile(r"^[\x21-\x7e]{1,65536}$")  # what may go into an Authorization header, and no more
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


class RedirectRefusedError(Exception):
    """A redirect to a scheme kdebug does not follow (only http and https), or from https down to http."""

    def __init__(self, scheme: str):
        super().__init__(scheme)
        self.scheme = scheme


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
    """One image's (or one push's) overall time. Socket timeouts bound each read; `watch` bounds them
    all: a body or headers trickled a byte at a time never trip a per-read timeout, so when the time
    is up every watched socket is shut down and the blocked read returns."""

    def __init__(self, seconds: float, clock: Callable[[], float]):
        self.clock = clock
        self.end = clock() + seconds
        self.seconds = seconds
        self._sockets: list[socket.socket] = []
        self._timer: Any = None

    def remaining(self) -> float:
        return self.end - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def watch(self, sock: socket.socket) -> None:

        self._sockets.append(sock)
        if self._timer is None:
            self._timer = threading.Timer(max(self.remaining(), 0.0), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):  # already closed: nothing to stop
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


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
        self._opener: Any = None

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
        auths = {**self.docker_auths, **(pull_auths or {})}
        cached = self._cached_evidence(ref, platform, digest_hint)
        if cached is not None and (cached.get("files") is not None or not want_files(cached["image_config"])):
            self.stats.cache_hits += 1
            return _evidence_view(cached, from_cache=True)
        deadline = _Deadline(self.deadline_seconds, self.monotonic)
        try:
            return self._fetch_evidence(ref, platform, auths, deadline, digest_hint, want_files)
        finally:
            deadline.close()

    def _fetch_evidence(
        self,
        ref: ImageRef,
        platform: str,
        auths: dict[str, Any],
        deadline: _Deadline,
        digest_hint: str | None,
        want_files: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any]:
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
            if not isinstance(body.get("manifests"), list):
                raise RegistryError(f"{ref}: the registry sent an index whose manifests are not a list")
            child = pick_platform(body, platform)
            if child is None:
                available = ", ".join(
                    sorted(
                        _platform_string(m.get("platform"))
                        for m in body["manifests"]
                        if isinstance(m, dict) and isinstance(m.get("platform"), dict)
                    )
                )
                raise RegistryError(
                    f"{ref} has no image for platform {platform} (it has: {_capped(available) or 'none'})"
                )
            child_digest = _valid_digest(ref, child.get("digest"), "index entry")
            if self.cache is not None:
                self.cache.put_image(digest, {"platforms": {platform: child_digest}})
            body, media_type, digest = self._get_manifest(ref, child_digest, auths, deadline)
        if self.cache is not None and not ref.digest:
            self.cache.put_tag(_tag_key(ref, platform), index_digest or digest)
        config = body.get("config")
        if not isinstance(config, dict) or not config.get("digest"):
            raise RegistryError(
                f"{ref}: the registry sent a manifest without a config ({_capped(media_type)})"
            )
        return ResolvedImage(
            ref=ref,
            manifest_digest=digest,
            index_digest=index_digest,
            config_digest=_valid_digest(ref, config["digest"], "config"),
            layers=_valid_layers(ref, body.get("layers")),
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
            raw = _read_body(resp, MAX_MANIFEST_BYTES, deadline, ref, "manifest")
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        self.stats.bytes_downloaded += len(raw)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{ref}: manifest digest mismatch (asked {reference}, got {digest})")
        body = _json_object(raw, ref, "a manifest")
        declared = body.get("mediaType")
        return body, declared if isinstance(declared, str) and declared else media_type, digest

    def fetch_config(
        self, resolved: ResolvedImage, auths: dict[str, Any], deadline: _Deadline
    ) -> dict[str, Any]:
        raw = self._get_blob_bytes(resolved.ref, resolved.config_digest, auths, deadline, MAX_CONFIG_BYTES)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != resolved.config_digest:
            raise RegistryError(f"{resolved.ref}: config blob digest mismatch")
        data = _json_object(raw, resolved.ref, "an image config")
        history = data.get("history")
        return {
            "config": _sound_config(data.get("config")),
            "history": [step for step in history if isinstance(step, dict)]
            if isinstance(history, list)
            else [],
            "os": data.get("os") if isinstance(data.get("os"), str) else None,
            "architecture": data.get("architecture") if isinstance(data.get("architecture"), str) else None,
        }

    def read_files(
        self, resolved: ResolvedImage, auths: dict[str, Any], deadline: _Deadline
    ) -> dict[str, Any]:
        """Stream layers smallest first within the byte budget; layers that do not fit stay unread."""
        budget = self.settings.byte_budget
        per_layer: list[LayerFiles | None] = [None] * len(resolved.layers)
        order = sorted(range(len(resolved.layers)), key=lambda i: int(resolved.layers[i].get("size") or 0))
        skipped: list[int] = []
        capped: list[int] = []
        for index in order:
            layer = resolved.layers[index]
            size = int(layer.get("size") or 0)
            media_type = layer.get("mediaType", "")
            if size > budget or media_type not in GZIP_LAYER_TYPES + TAR_LAYER_TYPES:
                skipped.append(index)
                continue
            try:
                per_layer[index] = self._read_layer(resolved.ref, layer, auths, deadline, budget)
            except LayerCapError:
                capped.append(index)  # a decompression bomb or a giant tar header: the rest is not read
            budget -= size
        files = merge_layers(per_layer)
        files["bytes_budget"] = self.settings.byte_budget
        files["layers_skipped"] = skipped
        files["layers_capped"] = capped
        return files

    def _read_layer(
        self, ref: ImageRef, layer: dict[str, Any], auths: dict[str, Any], deadline: _Deadline, budget: int
    ) -> LayerFiles | None:
        path = f"/v2/{ref.repository}/blobs/{layer['digest']}"
        with self._request("GET", ref, path, auths, deadline, kind="layer") as resp:
            counted = _CountingReader(resp, budget, self, deadline)
            compressed = layer.get("mediaType") in GZIP_LAYER_TYPES
            try:
                return read_layer(counted, compressed, expanded_cap(int(layer.get("size") or 0)))
            except BudgetExceededError:
                return None
            except DeadlineExpiredError:
                raise _deadline_error(ref, deadline) from None
            except (OSError, EOFError) as exc:
                if deadline.expired():  # the watchdog shut the socket: the time is up, not the layer bad
                    raise _deadline_error(ref, deadline) from None
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
            raw = _read_body(resp, limit, deadline, ref, "blob")
        self.stats.bytes_downloaded += len(raw)
        return raw

    # -- pushing (tests and the demo build images with kdebug_emulator.ocibuild) ----------------------------

    def push_blob(self, ref: ImageRef, data: bytes, auths: dict[str, Any] | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        auths = {**self.docker_auths, **(auths or {})}
        deadline = _Deadline(max(self.deadline_seconds, 60.0), self.monotonic)
        try:
            self._push_blob(ref, data, digest, auths, deadline)
        finally:
            deadline.close()
        return digest

    def _push_blob(
        self, ref: ImageRef, data: bytes, digest: str, auths: dict[str, Any], deadline: _Deadline
    ) -> None:
        path = f"/v2/{ref.repository}/blobs/{digest}"
        if self._exists(ref, path, auths, deadline):
            return
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

    def push_manifest(
        self, ref: ImageRef, body: bytes, media_type: str, reference: str, auths: dict[str, Any] | None = None
    ) -> str:
        auths = {**self.docker_auths, **(auths or {})}
        deadline = _Deadline(max(self.deadline_seconds, 30.0), self.monotonic)
        path = f"/v2/{ref.repository}/manifests/{reference}"
        with (
            contextlib.closing(deadline),
            self._request(
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
            ),
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
        host = host.lower()
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
            except RedirectRefusedError as exc:
                raise RegistryError(
                    f"registry {ref.registry}: refused to follow a redirect to {_capped(exc.scheme)} "
                    "(kdebug follows http and https only, and never from https to plain http)"
                ) from None
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
                if deadline.expired():
                    raise _deadline_error(ref, deadline) from None
                if attempt <= self.settings.retries and deadline.remaining() > 0.5:
                    continue
                raise RegistryError(
                    f"registry {ref.registry} dropped the connection ({type(exc).__name__})"
                ) from None
            except DeadlineExpiredError:
                raise _deadline_error(ref, deadline) from None
            except http_client.HTTPException as exc:  # not HTTP at all: a bad status line, endless headers
                if deadline.expired():
                    raise _deadline_error(ref, deadline) from None
                raise RegistryError(
                    f"registry {ref.registry} did not answer in HTTP ({type(exc).__name__})"
                ) from None
            except TimeoutError:
                if deadline.expired():
                    raise _deadline_error(ref, deadline) from None
                self._remember_unreachable(ref, "timed out")
                raise RegistryError(
                    f"registry {ref.registry} did not answer within {self.settings.timeout:g}s (timeout)"
                ) from None
            except urllib_error.URLError as exc:
                if deadline.expired():
                    raise _deadline_error(ref, deadline) from None
                self._remember_unreachable(ref, _reason_text(exc.reason))
                raise RegistryError(
                    f"registry {ref.registry} unreachable: {_reason_text(exc.reason)}"
                ) from None
            except OSError as exc:
                if deadline.expired():
                    raise _deadline_error(ref, deadline) from None
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
        request.kdebug_watch = deadline.watch  # type: ignore[attr-defined] (read by the opener's connections)
        self.stats.requests += 1
        self.stats.requests_by_kind[kind] = self.stats.requests_by_kind.get(kind, 0) + 1
        if self._opener is None:
            self._opener = self._build_opener()
        return self._opener.open(request, timeout=min(self.settings.timeout, remaining))

    def _build_opener(self) -> Any:
        """urllib's opener with http and https only (no file:, ftp:, data:), redirects followed only to
        http(s) and never from https down to plain http (except where plain http is allowed), and every
        connection's socket handed to the request's deadline watchdog."""

        client = self

        def watched(base: type[http_client.HTTPConnection]) -> type[http_client.HTTPConnection]:
            class Watched(base):  # type: ignore[valid-type,misc]
                def __init__(self, *args: Any, watch: Callable[[socket.socket], None] | None, **kw: Any):
                    super().__init__(*args, **kw)
                    self._kdebug_watch = watch

                def connect(self) -> None:
                    super().connect()
                    if self._kdebug_watch is not None:
                        self._kdebug_watch(self.sock)

            return Watched

        plain, secure = watched(http_client.HTTPConnection), watched(http_client.HTTPSConnection)

        class Plain(urllib_request.HTTPHandler):
            def http_open(self, req: Any) -> Any:
                return self.do_open(functools.partial(plain, watch=getattr(req, "kdebug_watch", None)), req)

        class Secure(urllib_request.HTTPSHandler):
            def https_open(self, req: Any) -> Any:
                conn = functools.partial(secure, watch=getattr(req, "kdebug_watch", None))
                return self.do_open(conn, req, context=client._ssl)

        class Redirects(urllib_request.HTTPRedirectHandler):
            def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
                # checked before urllib's own check, which lets ftp: through
                location = headers.get("Location") or headers.get("URI") or ""
                target = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, location))
                scheme = target.scheme.lower()
                downgrade = (
                    scheme == "http" and req.type == "https" and not client.is_plain_http(target.netloc)
                )
                if scheme not in ("http", "https") or downgrade:
                    fp.close()
                    raise RedirectRefusedError(f"{scheme}:" if scheme else "(no scheme)")
                return super().http_error_302(req, fp, code, msg, headers)

            http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

            def redirect_request(
                self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
            ) -> Any:
                new = super().redirect_request(req, fp, code, msg, headers, newurl)
                if new is not None:
                    new.kdebug_watch = getattr(req, "kdebug_watch", None)
                return new

        opener = urllib_request.OpenerDirector()
        for handler in (
            urllib_request.ProxyHandler(),
            urllib_request.UnknownHandler(),
            Plain(),
            Secure(),
            urllib_request.HTTPDefaultErrorHandler(),
            Redirects(),
            urllib_request.HTTPErrorProcessor(),
        ):
            opener.add_handler(handler)
        return opener

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
        realm = params["realm"]
        realm_host = self._allowed_realm_host(ref, realm)
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or f"repository:{ref.repository}:{actions}"
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        # Basic credentials go to a token service over TLS, or over plain HTTP to the registry's own origin
        # only: a plain-HTTP realm elsewhere gets the anonymous request.
        to_realm = realm.lower().startswith("https:") or realm_host == ref.api_host.lower()
        auth = _basic(creds) if creds and "username" in creds and to_realm else None
        try:
            with self._open("GET", url, {}, None, auth, deadline, "token") as resp:
                data = json.loads(_read_body(resp, MAX_TOKEN_BYTES, deadline, ref, "token answer"))
        except RedirectRefusedError as exc:
            raise RegistryError(
                f"registry {ref.registry}: its token service redirected to {_capped(exc.scheme)} "
                "(not followed)"
            ) from None
        except DeadlineExpiredError:
            raise _deadline_error(ref, deadline) from None
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
        except (OSError, ValueError, RecursionError, urllib_error.URLError) as exc:
            if deadline.expired():
                raise _deadline_error(ref, deadline) from None
            raise RegistryError(
                f"registry {ref.registry}: token service failed ({type(exc).__name__})"
            ) from None
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not token:
            raise RegistryError(f"registry {ref.registry}: token service sent no token")
        if not isinstance(token, str) or not TOKEN.match(token):
            raise RegistryError(f"registry {ref.registry}: token service sent a token that is not a token")
        self._tokens[(ref.api_host, f"{ref.repository}:{actions}")] = f"Bearer {token}"
        return auth is None

    def _allowed_realm_host(self, ref: ImageRef, realm: str) -> str:
        """The realm's host when kdebug may ask it for a token: https, or plain http where the registry
        itself may be plain http (loopback, `registry.insecure`). Anything else (file:, ftp:, plain http
        to a remote host, user info in the URL) is refused: the realm is the registry's word, not ours."""
        try:
            parts = urllib.parse.urlsplit(realm)
            scheme, netloc = parts.scheme.lower(), parts.netloc.lower()
        except ValueError:
            scheme, netloc = "", ""
        if (
            netloc
            and "@" not in netloc
            and (scheme == "https" or (scheme == "http" and self.is_plain_http(netloc)))
        ):
            return netloc
        raise RegistryError(
            f"registry {ref.registry}: refused its token realm {_capped(realm, 60)!r} "
            "(kdebug asks https token services only; plain http only on loopback or registry.insecure hosts)"
        )

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
        # read1: what has arrived, so a trickle is checked against the deadline between its bytes
        chunk = getattr(self.resp, "read1", self.resp.read)(size if size and size > 0 else 65536)
        if not chunk and self.deadline.expired():
            raise DeadlineExpiredError  # the watchdog ended the body: it is cut short, not complete
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
        plat = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(plat, dict):
            continue  # not an entry kdebug can match: the registry's mistake, not a platform
        same = plat.get("os") == wanted_os and plat.get("architecture") == wanted_arch
        if same and (not wanted_variant or plat.get("variant") in (None, wanted_variant)):
            candidates.append(entry)
    exact = [c for c in candidates if c["platform"].get("variant") == (wanted_variant or None)]
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


def _read_body(resp: Any, limit: int, deadline: _Deadline, ref: ImageRef, what: str) -> bytes:
    """A small document's body: refused when its declared length or what arrives is over `limit`, and
    ended by the deadline however slowly it trickles."""

    declared = (resp.headers.get("Content-Length") or "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise RegistryError(
            f"registry {ref.registry} sent a {what} of {int(declared)} bytes, "
            f"more than the {limit} kdebug reads"
        )
    chunks: list[bytes] = []
    total = 0
    read = getattr(resp, "read1", resp.read)
    while True:
        if deadline.expired():
            raise _deadline_error(ref, deadline)
        try:
            chunk = read(65536)
        except (OSError, ValueError, http_client.HTTPException) as exc:
            if deadline.expired():
                raise _deadline_error(ref, deadline) from None
            raise RegistryError(
                f"registry {ref.registry} broke off the {what} ({type(exc).__name__})"
            ) from None
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise RegistryError(
                f"registry {ref.registry} sent a {what} of more than the {limit} bytes kdebug reads"
            )
        chunks.append(chunk)
    if deadline.expired():  # the watchdog cut the body short
        raise _deadline_error(ref, deadline)
    return b"".join(chunks)


def _deadline_error(ref: ImageRef, deadline: _Deadline) -> RegistryError:
    return RegistryError(
        f"registry {ref.registry}: the image's evidence took longer than {deadline.seconds:g}s (timeout)"
    )


def _json_object(raw: bytes, ref: ImageRef, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python recurses
        raise RegistryError(f"{ref}: the registry sent {what} that is not JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{ref}: the registry sent {what} that is not a JSON object")
    return data


def _valid_digest(ref: ImageRef, value: Any, what: str) -> str:
    """A digest goes into a URL path and the cache's file names: only `algorithm:hex` passes."""
    if not isinstance(value, str) or not DIGEST.match(value):
        raise RegistryError(f"{ref}: the registry sent a manifest with an invalid {what} digest")
    return value


def _valid_layers(ref: ImageRef, layers: Any) -> list[dict[str, Any]]:
    if layers is None:
        return []
    if not isinstance(layers, list):
        raise RegistryError(f"{ref}: the registry sent a manifest whose layers are not a list")
    for layer in layers:
        size = layer.get("size", 0) if isinstance(layer, dict) else None
        sound = (
            isinstance(layer, dict) and isinstance(layer.get("digest"), str) and DIGEST.match(layer["digest"])
        )
        if not sound or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RegistryError(f"{ref}: the registry sent a manifest with malformed layers")
    return list(layers)


CONFIG_FIELDS: dict[str, type] = {
    "User": str,
    "WorkingDir": str,
    "Env": list,
    "Entrypoint": list,
    "Cmd": list,
}


def _sound_config(section: Any) -> dict[str, Any]:
    """The image config's `config` with only fields of the types classification reads: the rest is
    the registry's word in a shape that would break it, and is dropped."""
    if not isinstance(section, dict):
        return {}
    sound: dict[str, Any] = {}
    for name, kind in CONFIG_FIELDS.items():
        value = section.get(name)
        if isinstance(value, kind):
            sound[name] = [item for item in value if isinstance(item, str)] if kind is list else value
    labels = section.get("Labels")
    if isinstance(labels, dict):
        sound["Labels"] = {str(k): v for k, v in labels.items() if isinstance(v, str)}
    return sound


def _capped(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """Server-chosen text in a message: one line, at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        return _capped((reason.strerror or str(reason)).lower())
    return _capped(str(reason))


def default_platform() -> str:
    machine = _platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return f"linux/{arch}"
