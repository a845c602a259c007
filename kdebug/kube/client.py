"""ADAPTER: the only module that talks to the Kubernetes API (and the only one importing `kubernetes`).

Every HTTP request goes through `KubeClient._send`: JSON bodies over one keep-alive connection pool
(kdebug.kube.httppool, standard library only), plain dicts back, failures turned into kdebug errors.
Tokens and passwords never reach a message: errors name the server URL, the verb and the path only.

Credentials come from kdebug.kube.kubeconfig when the kubeconfig is static (a token, a client certificate
or a basic-auth pair: no code to run). The official `kubernetes` package, large to import, is loaded
only for kubeconfigs that need it: exec plugins, auth providers and in-cluster config go through its
loader, whose tokens are refreshed before each request.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from kdebug import __version__
from kdebug.errors import (
    ApiError,
    KdebugError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    UnreachableError,
    UsageError,
    capped,
)
from kdebug.kube import kubeconfig as kc
from kdebug.kube import shapes
from kdebug.kube.background import Pending
from kdebug.kube.httppool import ConnectionPool
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    from kdebug.kube.api import WebSocketLike

# Loaded only when used: the websocket client by attach and exec, the official package only for kubeconfigs
# that need code run (exec plugins, auth providers) and for in-cluster config.
websocket = lazy_module("websocket")
kubernetes_client = lazy_module("kubernetes.client")
kubernetes_config = lazy_module("kubernetes.config")
config_exception = lazy_module("kubernetes.config.config_exception")

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
USER_AGENT = f"kdebug/{__version__}"
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}
REVIEW_RESOURCES = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"})
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0  # a whole answer (status, headers and body), unless the caller says otherwise
# What kdebug reads of an answer: objects and lists (a list of 500 pods is a few MiB), a watch line; of
# an error body only its start (the Status message is near the top); of a message a line's worth.
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class ClusterConfig:
    """What the kubeconfig (or in-cluster config) says, without secrets."""

    server: str
    namespace: str
    context: str


@dataclass
class Transport:
    """How to reach and authenticate to one API server; `auth_headers` is called for every request."""

    server: str
    verify: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    tls_server_name: str | None
    auth_headers: Callable[[], dict[str, str]]
    ca_data: str | bytes | None = None  # PEM text or DER, instead of (or besides) ca_file
    cert_data: bytes | None = None  # client-certificate-data, instead of cert_file
    key_data: bytes | None = field(default=None, repr=False)  # client-key-data, instead of key_file

    def ssl_context(self) -> ssl.SSLContext:
        if self.verify:
            context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        else:
            context = _insecure_context()
        if self.cert_file or self.cert_data:
            with _secret_file(self.cert_data) as cert, _secret_file(self.key_data) as key:
                context.load_cert_chain(cert or self.cert_file or "", key or self.key_file)
        return context


@contextmanager
def _secret_file(data: bytes | None) -> Iterator[str | None]:
    """A path holding `data` only while ssl reads it: ssl loads client keys from files, never memory.

    On Linux an anonymous memory file (memfd) that has no name on any filesystem, so not even a
    SIGKILL leaves the key behind; elsewhere a 0600 file in a private 0700 directory, removed as
    soon as ssl has read it (before any request is sent).
    """
    if data is None:
        yield None
        return
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("kdebug-tls", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="kdebug-tls-")  # mode 0700
    path = os.path.join(directory, "pem")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        yield path
    finally:
        with suppress(OSError):
            os.unlink(path)
        with suppress(OSError):
            os.rmdir(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def redact_url(url: str) -> str:
    """The server URL without `user:password@`: what errors, progress and audit records may show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _checked_ssl_context(transport: Transport) -> ssl.SSLContext:
    """The TLS context, or a one-line UsageError when the kubeconfig's CA or client pair is unusable."""
    try:
        return transport.ssl_context()
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
        raise UsageError(
            f"kubeconfig: the certificate authority or client certificate for {redact_url(transport.server)} "
            f"cannot be used ({reason})",
            hint="check certificate-authority(-data) and client-certificate/key(-data) in the kubeconfig",
        ) from None


def _insecure_context() -> ssl.SSLContext:
    # the kubeconfig asked for insecure-skip-tls-verify
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class KubeClient:
    """Plain-dict access to one API server."""

    def __init__(
        self,
        transport: Transport,
        cluster: ClusterConfig,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 4,
    ):
        self.transport = transport
        self.cluster = cluster
        self.sleep = sleep
        https = transport.server.startswith("https")
        self._pool = ConnectionPool(
            transport.server,
            ssl_context=_checked_ssl_context(transport) if https else None,
            server_hostname=transport.tls_server_name,
            maxsize=pool_size,
        )
        self._prefetched: dict[str, Any] = {}  # path -> Pending GET (see prefetch)

    @property
    def server(self) -> str:
        return self.cluster.server

    @property
    def namespace(self) -> str:
        return self.cluster.namespace

    # -- the choke point ---------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: float | tuple[float, float] | None,
    ) -> Any:
        """One request, with bounded retries on 409/429/5xx; returns the response with its body unread."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = json.dumps(body).encode("utf-8")
        pairs = [(key, value) for key, value in (query or {}).items() if value is not None]
        target = path + "?" + urlencode(pairs) if pairs else path
        connect_s, read_s = (
            timeout if isinstance(timeout, tuple) else (CONNECT_TIMEOUT_S, timeout or READ_TIMEOUT_S)
        )
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self._pool.request(
                    method,
                    target,
                    data,
                    {**headers, **self.transport.auth_headers()},
                    connect_timeout=connect_s,
                    read_timeout=read_s,
                    idempotent=True if _is_review(path) else None,
                )
            except KdebugError:
                raise
            except Exception as exc:  # socket / ssl / http.client failures
                raise self._unreachable(exc) from None
            if 300 <= response.status < 400:  # followed, it would take the credentials elsewhere
                location = capped(str(response.headers.get("Location") or ""), 120)
                response.release()
                raise UnreachableError(
                    f"{method} {path}: the server at {self.server} answered {response.status} "
                    f"(a redirect{' to ' + location if location else ''}), which kdebug does not follow",
                    hint="check that the kubeconfig's server URL is the API server itself",
                )
            if response.status < 400:
                return response
            text = _read_text(response)
            if _may_retry(method, response.status) and attempt < MAX_ATTEMPTS:
                self.sleep(_backoff_seconds(attempt, response.headers))
                continue
            raise error_from_response(response.status, text, method, path, self.server)
        raise AssertionError("unreachable")  # pragma: no cover

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> dict:
        response = self._send(method, path, query, body, content_type, timeout)
        try:
            data, truncated = response.read_capped(MAX_BODY_BYTES)
        except TimeoutError:
            raise UnreachableError(
                f"{method} {path}: the answer from {self.server} did not arrive in time (timed out)"
            ) from None
        except Exception as exc:
            raise self._unreachable(exc) from None
        if truncated:
            raise ApiError(f"{method} {path}: the answer is larger than {MAX_BODY_BYTES // 2**20} MiB")
        return shapes.checked_answer(_parsed(data, f"{method} {path}") if data else {}, method, path)

    def get(self, path: str, query: dict[str, Any] | None = None) -> dict:
        pending = self._prefetched.pop(path, None) if not query else None
        if pending is not None:
            return pending.result()
        return self.request("GET", path, query=query)

    def prefetch(self, path: str) -> None:
        """Start `GET path` now on a thread; the next `get(path)` takes its answer (or its error).

        For objects read later in the same command that do not change meanwhile (the namespace, the
        node): their round trip overlaps the work in between instead of adding to it.
        """
        if path not in self._prefetched:
            self._prefetched[path] = Pending(self.request, "GET", path)

    def patch(self, path: str, body: dict, content_type: str) -> dict:
        return self.request("PATCH", path, body=body, content_type=content_type)

    def watch(self, path: str, query: dict[str, Any], timeout_s: float) -> Iterator[dict]:
        """Stream watch events ({"type", "object"}) until the server ends it or `timeout_s` of silence."""
        params = {
            **query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": max(1, int(timeout_s) + 1),
        }
        response = self._send("GET", path, params, None, None, (CONNECT_TIMEOUT_S, max(0.1, timeout_s)))
        try:
            for line in _lines(response.chunks(), f"the watch of {path}"):
                if line.strip():
                    event = shapes.checked_event(_parsed(line, f"the watch of {path}"), path)
                    if event["type"] == "ERROR" and isinstance(event["object"].get("message"), str):
                        event["object"]["message"] = capped(event["object"]["message"], MAX_MESSAGE_CHARS)
                    yield event
        except TimeoutError:  # `timeout_s` without an event
            return
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None
        finally:
            response.release()

    def stream_bytes(self, path: str, query: dict[str, Any]) -> Iterator[bytes]:
        """Stream a response body (e.g. logs with follow=true) chunk by chunk as it arrives."""
        response = self._send("GET", path, query, None, None, (CONNECT_TIMEOUT_S, None))  # type: ignore[arg-type]
        try:
            yield from response.chunks()
        except Exception as exc:
            raise self._unreachable(exc) from None
        finally:
            response.release()

    # -- websockets (attach / exec) ----------------------------------------------------------

    def websocket(
        self, path: str, query: list[tuple[str, str]], subprotocols: tuple[str, ...]
    ) -> WebSocketLike:
        """A connected websocket-client WebSocket using the ApiClient's server, TLS files and token."""
        transport = self.transport
        url = _websocket_url(redact_url(transport.server), path, query)
        try:
            headers = [f"{key}: {value}" for key, value in transport.auth_headers().items()]
            headers.append(f"User-Agent: {USER_AGENT}")
            ws = websocket.WebSocket(
                sslopt=_ssl_options(transport), skip_utf8_validation=True, enable_multithread=True
            )
            # redirect_limit=0: a redirect would carry the bearer token to wherever it points
            ws.connect(
                url,
                header=headers,
                subprotocols=list(subprotocols),
                timeout=CONNECT_TIMEOUT_S,
                redirect_limit=0,
            )
        except KdebugError:
            raise
        except websocket.WebSocketBadStatusException as exc:
            raise self._error_from_websocket(exc, path) from None
        except Exception as exc:
            raise self._unreachable(exc) from None
        ws.settimeout(None)
        return ws

    # -- error mapping -----------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> UnreachableError:
        return UnreachableError(f"cannot reach the cluster at {self.server}: {_short_reason(exc)}")

    def _error_from_websocket(self, exc: Any, path: str) -> KdebugError:
        body = exc.resp_body.decode("utf-8", "replace") if getattr(exc, "resp_body", None) else ""
        return error_from_response(exc.status_code, body, "GET", path, self.server)


def error_from_response(status: int, body: str, method: str, path: str, server: str) -> KdebugError:
    """Turn an HTTP error into one kdebug error that keeps the server's own message (capped)."""
    try:
        parsed = json.loads(body) if body else {}
    except (ValueError, RecursionError):
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    message = capped(_error_message(parsed, body, status).strip(), MAX_MESSAGE_CHARS)
    reason = capped(str(parsed.get("reason") or ""), 64)
    if status == 401:
        return UnreachableError(
            f"the cluster at {server} rejected the credentials (401 Unauthorized)",
            hint="check the user in your kubeconfig, or log in again",
        )
    if status == 403:
        return PermissionDeniedError(message)
    if status == 404:
        if path.endswith("/ephemeralcontainers") and not parsed.get("details"):
            return NotSupportedError("ephemeral containers are disabled for this cluster")
        return NotFoundError(message)
    return ApiError(message, status=status, reason=reason)


def _error_message(parsed: dict, body: str, status: int) -> str:
    """A Status's message; else the message of a Status cut off at MAX_ERROR_BODY_BYTES; else the body."""
    if parsed.get("message"):
        return str(parsed["message"])
    cut = _STATUS_MESSAGE.search(body[:4096]) if not parsed else None
    if cut:
        return cut.group(1)
    return f"HTTP {status}: {body.strip()}" if body.strip() else f"HTTP {status}"


_STATUS_MESSAGE = re.compile(r'^\s*\{.*?"message"\s*:\s*"((?:[^"\\]|\\.)*)', re.DOTALL)


def _parsed(data: bytes, what: str) -> object:
    """JSON from the server; a one-line ApiError for anything else, however deeply nested."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ApiError(f"{what}: the answer is nested too deeply to be an API object") from None
    except ValueError:
        raise ApiError(f"{what}: the server sent a body that is not JSON") from None


def _is_review(path: str) -> bool:
    """Access, rules and identity reviews: POSTs that create nothing, safe to send twice."""
    return path.rsplit("/", 1)[-1] in REVIEW_RESOURCES


def _may_retry(method: str, status: int) -> bool:
    """429 means the server did nothing, so any request may go again. After a 409 or 5xx a POST may
    not: if its first try did succeed, a retry would leave a second object behind (a copy pod running
    the target's app). Reads, and patches of named ephemeral containers, are safe to repeat."""
    if status == 429:
        return True
    return status in RETRY_STATUSES and method.upper() != "POST"


def _backoff_seconds(attempt: int, headers: Any) -> float:
    retry_after = (headers or {}).get("Retry-After") if headers else None
    if retry_after and str(retry_after).isdigit():
        return min(float(retry_after), 2.0)
    return min(0.2 * (2 ** (attempt - 1)), 2.0)


def _short_reason(exc: BaseException) -> str:
    """A short, secret-free reason: connection refused, name resolution, TLS, timeout, lost."""
    text = f"{type(exc).__name__}: {exc}".lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename nor servname" in text or "name resolution" in text:
        return "the server name does not resolve"
    if "eof occurred" in text or "unexpected_eof" in text:
        return "connection lost"
    if "certificate" in text or "ssl" in text or "tls" in text:
        return "TLS handshake failed (certificate not trusted or not valid for this server)"
    if "timed out" in text or "timeout" in text:
        return "connection timed out"
    if "reset" in text or "closed" in text or "aborted" in text or "protocol" in text or "broken" in text:
        return "connection lost"
    return type(exc).__name__


def _lines(chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
    """Split a byte stream into lines, holding partial lines (up to MAX_BODY_BYTES) across chunks."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
        if len(pending) > MAX_BODY_BYTES:
            raise ApiError(f"{what}: a line is larger than {MAX_BODY_BYTES // 2**20} MiB")
    if pending:
        yield pending


def _websocket_url(host: str, path: str, query: list[tuple[str, str]]) -> str:
    parts = urlsplit(host)
    scheme = "wss" if parts.scheme == "https" else "ws"
    base = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return f"{base}{path}?{urlencode(query)}" if query else f"{base}{path}"


def _ssl_options(transport: Transport) -> dict[str, Any]:
    """websocket-client's TLS options: the same context as the HTTP pool."""
    options: dict[str, Any] = {"context": transport.ssl_context()}
    if not transport.verify:
        options.update(cert_reqs=ssl.CERT_NONE, check_hostname=False)
    if transport.tls_server_name:
        options["server_hostname"] = transport.tls_server_name
    return options


def _read_text(response: Any) -> str:
    """The start of an error body: what is there of MAX_ERROR_BODY_BYTES by the deadline."""
    try:
        data, _more = response.read_capped(MAX_ERROR_BODY_BYTES)
    except Exception:
        return ""
    return data.decode("utf-8", "replace")


# -- configuration ---------------------------------------------------------------------------


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    pool_size: int = 4,
) -> KubeClient:
    """A KubeClient from --kubeconfig/KUBECONFIG (merged) or ~/.kube/config, else in-cluster config.

    `pool_size`: connections kept per server (raise it for concurrent callers such as `kdebug run`).
    """
    paths = kc.kubeconfig_paths(kubeconfig)
    explicit = bool(kubeconfig or os.environ.get("KUBECONFIG"))
    existing = [p for p in paths if _exists(p)]
    if explicit and not existing:
        raise UsageError(f"kubeconfig {os.pathsep.join(map(str, paths))} does not exist")
    if not existing:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            transport = _transport_from_kubernetes(None, None)
            cluster = ClusterConfig(
                redact_url(transport.server), namespace or _in_cluster_namespace(), "in-cluster"
            )
            return KubeClient(transport, cluster, pool_size=pool_size)
        raise UsageError(
            "no kubeconfig found (~/.kube/config) and not running in a cluster",
            hint="pass --kubeconfig FILE, set KUBECONFIG, or try `kdebug demo`",
        )
    merged = kc.load_merged(existing)
    context_name, context_data = kc.chosen_context(merged, context)
    if not context_name:
        raise UsageError("kubeconfig has no current context", hint="pass --context NAME")
    credentials = kc.static_credentials(merged, context)
    if credentials is not None:
        transport = _transport_from_static(credentials)
    else:
        transport = _transport_from_kubernetes(os.pathsep.join(map(str, existing)), context)
    cluster = ClusterConfig(
        server=redact_url(transport.server),  # errors and audit records name the server: no userinfo
        namespace=namespace or context_data.get("namespace") or "default",
        context=context_name,
    )
    return KubeClient(transport, cluster, pool_size=pool_size)


def _exists(path: Any) -> bool:
    try:
        return bool(path.exists())
    except OSError as exc:  # e.g. a directory on the way that we may not read
        raise UsageError(f"kubeconfig {path}: {exc.strerror}") from None


def _transport_from_static(credentials: Any) -> Transport:
    headers: dict[str, str] = {}
    if credentials.token:
        headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials.basic:
        user, password = credentials.basic
        raw = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {raw}"
    return Transport(
        server=credentials.server,
        verify=credentials.verify,
        ca_file=credentials.ca_file,
        cert_file=credentials.cert_file,
        key_file=credentials.key_file,
        tls_server_name=credentials.tls_server_name,
        auth_headers=lambda: headers,
        ca_data=credentials.ca_data,
        cert_data=credentials.cert_data,
        key_data=credentials.key_data,
    )


def _transport_from_kubernetes(config_file: str | None, context: str | None) -> Transport:
    """The official loader, for exec plugins, auth providers and in-cluster config."""
    cfg = kubernetes_client.Configuration()
    try:
        if config_file is None:
            kubernetes_config.load_incluster_config(client_configuration=cfg)
        else:
            kubernetes_config.load_kube_config(
                config_file=config_file, context=context, client_configuration=cfg
            )
    except config_exception.ConfigException as exc:
        raise UsageError(f"kubeconfig: {_first_line(str(exc))}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"kubeconfig {config_file}: {_first_line(str(exc))}") from None

    def auth_headers() -> dict[str, str]:
        if cfg.refresh_api_key_hook is not None:  # exec plugins and auth providers renew tokens here
            cfg.refresh_api_key_hook(cfg)
        settings = cfg.auth_settings()
        bearer = settings.get("BearerToken") or {}
        if bearer.get("value"):
            return {"Authorization": bearer["value"]}
        if cfg.username and cfg.password:
            return {"Authorization": cfg.get_basic_auth_token()}
        return {}

    return Transport(
        server=cfg.host,
        verify=bool(cfg.verify_ssl),
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        tls_server_name=getattr(cfg, "tls_server_name", None),
        auth_headers=auth_headers,
    )


def _in_cluster_namespace() -> str:
    try:
        with open(IN_CLUSTER_NAMESPACE_FILE, encoding="utf-8") as handle:
            return handle.read().strip() or "default"
    except OSError:
        return "default"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid configuration"
