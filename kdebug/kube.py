"""ADAPTER: the only module that imports `kubernetes`.

Every HTTP request goes through `KubeClient.request`, which sends JSON bodies through the
kubernetes package's ApiClient (so kubeconfig auth, TLS and exec plugins behave as in kubectl),
returns plain dicts and turns failures into kdebug errors. Tokens and passwords never reach a
message: errors name the server URL, the verb and the path only.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from kdebug.errors import (
    ApiError,
    KdebugError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
    UsageError,
)

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClusterConfig:
    """What the kubeconfig (or in-cluster config) says, without secrets."""

    server: str
    namespace: str
    context: str


class KubeClient:
    """Plain-dict access to one API server."""

    def __init__(self, api_client: Any, cluster: ClusterConfig, sleep: Callable[[float], None] = time.sleep):
        self.api_client = api_client
        self.cluster = cluster
        self.sleep = sleep

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
        """One request, with bounded retries on 409/429/5xx; returns the unread urllib3 response."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        query_params = [(key, value) for key, value in (query or {}).items() if value is not None]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self.api_client.call_api(
                    path,
                    method,
                    query_params=query_params,
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=timeout if timeout is not None else (CONNECT_TIMEOUT_S, 60.0),
                )
            except ApiException as exc:
                if exc.status in RETRY_STATUSES and attempt < MAX_ATTEMPTS:
                    self.sleep(_backoff_seconds(attempt, exc.headers))
                    continue
                raise self._error_from_api_exception(exc, method, path) from None
            except Exception as exc:  # urllib3 / socket / ssl failures
                if isinstance(exc, KdebugError):
                    raise
                raise self._unreachable(exc) from None
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
            data = response.data
        except Exception as exc:
            raise self._unreachable(exc) from None
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            raise ApiError(f"{method} {path}: the server sent a body that is not JSON") from None

    def get(self, path: str, query: dict[str, Any] | None = None) -> dict:
        return self.request("GET", path, query=query)

    def patch(self, path: str, body: dict, content_type: str) -> dict:
        return self.request("PATCH", path, body=body, content_type=content_type)

    def watch(self, path: str, query: dict[str, Any], timeout_s: float) -> Iterator[dict]:
        """Stream watch events ({"type", "object"}) until the server ends it or `timeout_s` of silence."""
        import urllib3

        params = {
            **query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": max(1, int(timeout_s) + 1),
        }
        response = self._send("GET", path, params, None, None, (CONNECT_TIMEOUT_S, max(0.1, timeout_s)))
        try:
            for line in _lines(response.stream(amt=None, decode_content=False)):
                if line.strip():
                    yield json.loads(line)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            return
        except urllib3.exceptions.ProtocolError as exc:
            if _is_timeout(exc):
                return
            raise self._unreachable(exc) from None
        finally:
            response.release_conn()

    def stream_bytes(self, path: str, query: dict[str, Any]) -> Iterator[bytes]:
        """Stream a response body (e.g. logs with follow=true) chunk by chunk as it arrives."""
        response = self._send("GET", path, query, None, None, (CONNECT_TIMEOUT_S, None))  # type: ignore[arg-type]
        try:
            if response.chunked:
                yield from response.read_chunked(decode_content=False)
            else:
                while chunk := response.read1(65536):
                    yield chunk
        except Exception as exc:
            raise self._unreachable(exc) from None
        finally:
            response.release_conn()

    # -- websockets (attach / exec) ----------------------------------------------------------

    def websocket(self, path: str, query: list[tuple[str, str]], subprotocols: tuple[str, ...]) -> Any:
        """A connected websocket-client WebSocket using the ApiClient's server, TLS files and token."""
        import websocket

        cfg = self.api_client.configuration
        auth_headers: dict[str, str] = {}
        self.api_client.update_params_for_auth(auth_headers, [], ["BearerToken"])
        headers = [f"{key}: {value}" for key, value in auth_headers.items()]
        url = _websocket_url(cfg.host, path, query)
        ws = websocket.WebSocket(sslopt=_ssl_options(cfg), skip_utf8_validation=True, enable_multithread=True)
        try:
            ws.connect(url, header=headers, subprotocols=list(subprotocols), timeout=CONNECT_TIMEOUT_S)
        except websocket.WebSocketBadStatusException as exc:
            raise self._error_from_websocket(exc, path) from None
        except Exception as exc:
            raise self._unreachable(exc) from None
        ws.settimeout(None)
        return ws

    # -- error mapping -----------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> UnreachableError:
        return UnreachableError(f"cannot reach the cluster at {self.server}: {_short_reason(exc)}")

    def _error_from_api_exception(self, exc: Any, method: str, path: str) -> KdebugError:
        if exc.status == 0:  # TLS failure wrapped by the client
            return UnreachableError(f"cannot reach the cluster at {self.server}: TLS handshake failed")
        body = exc.body if isinstance(exc.body, str) else (exc.body or b"").decode("utf-8", "replace")
        return error_from_response(exc.status, body, method, path, self.server)

    def _error_from_websocket(self, exc: Any, path: str) -> KdebugError:
        body = exc.resp_body.decode("utf-8", "replace") if getattr(exc, "resp_body", None) else ""
        return error_from_response(exc.status_code, body, "GET", path, self.server)


def error_from_response(status: int, body: str, method: str, path: str, server: str) -> KdebugError:
    """Turn an HTTP error into one kdebug error that keeps the server's own message."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    message = str(parsed.get("message") or body.strip() or f"HTTP {status}")
    reason = str(parsed.get("reason", ""))
    if status == 401:
        return UnreachableError(
            f"the cluster at {server} rejected the credentials (401 Unauthorized)",
            hint="check the user in your kubeconfig, or log in again",
        )
    if status == 403:
        return PermissionDeniedError(message)
    if status == 404:
        if path.endswith("/ephemeralcontainers") and not parsed.get("details"):
            from kdebug.errors import NotSupportedError

            return NotSupportedError("ephemeral containers are disabled for this cluster")
        return NotFoundError(message)
    return ApiError(message, status=status, reason=reason)


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
    if "certificate" in text or "ssl" in text or "tls" in text:
        return "TLS handshake failed (certificate not trusted or not valid for this server)"
    if "timed out" in text or "timeout" in text:
        return "connection timed out"
    if "reset" in text or "closed" in text or "aborted" in text or "protocol" in text or "broken" in text:
        return "connection lost"
    return type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    return "timed out" in str(exc).lower()


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines, holding partial lines across chunks."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def _websocket_url(host: str, path: str, query: list[tuple[str, str]]) -> str:
    parts = urlsplit(host)
    scheme = "wss" if parts.scheme == "https" else "ws"
    base = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return f"{base}{path}?{urlencode(query)}" if query else f"{base}{path}"


def _ssl_options(cfg: Any) -> dict[str, Any]:
    if not cfg.verify_ssl:
        options: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    else:
        import certifi

        options = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": cfg.ssl_ca_cert or certifi.where()}
        if cfg.assert_hostname is not None:
            options["check_hostname"] = cfg.assert_hostname
    if cfg.cert_file:
        options["certfile"] = cfg.cert_file
    if cfg.key_file:
        options["keyfile"] = cfg.key_file
    if getattr(cfg, "tls_server_name", None):
        options["server_hostname"] = cfg.tls_server_name
    return options


# -- configuration ---------------------------------------------------------------------------


def connect(
    kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
) -> KubeClient:
    """A KubeClient from --kubeconfig/KUBECONFIG (merged) or ~/.kube/config, else in-cluster config."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    config_file = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    has_file = bool(kubeconfig or os.environ.get("KUBECONFIG")) or os.path.exists(config_file)
    cfg = client.Configuration()
    try:
        if has_file:
            _require_files(config_file)
            config.load_kube_config(config_file=config_file, context=context, client_configuration=cfg)
            context_name, context_namespace = _context_namespace(config_file, context)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
            context_name, context_namespace = "in-cluster", _in_cluster_namespace()
        else:
            raise UsageError(
                "no kubeconfig found (~/.kube/config) and not running in a cluster",
                hint="pass --kubeconfig FILE, set KUBECONFIG, or try `kdebug demo`",
            )
    except ConfigException as exc:
        raise UsageError(f"kubeconfig: {_first_line(str(exc))}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"kubeconfig {config_file}: {_first_line(str(exc))}") from None
    cfg.retries = False  # kdebug retries itself, only where it is safe (see KubeClient._send)
    if not cfg.verify_ssl:
        import urllib3

        # the kubeconfig asked for insecure-skip-tls-verify: one warning per request would bury the output
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    cluster = ClusterConfig(server=cfg.host, namespace=namespace or context_namespace, context=context_name)
    return KubeClient(client.ApiClient(cfg), cluster)


def _require_files(config_file: str) -> None:
    paths = [p for p in config_file.split(os.pathsep) if p]
    if not any(os.path.exists(os.path.expanduser(p)) for p in paths):
        raise UsageError(f"kubeconfig {config_file} does not exist")


def _context_namespace(config_file: str, context: str | None) -> tuple[str, str]:
    from kubernetes import config

    contexts, current = config.list_kube_config_contexts(config_file)
    chosen = current
    if context:
        chosen = next((c for c in contexts if c.get("name") == context), None)
        if chosen is None:
            names = ", ".join(c.get("name", "") for c in contexts)
            raise UsageError(f"context {context!r} not found in kubeconfig (contexts: {names})")
    chosen = chosen or {}
    return chosen.get("name", ""), (chosen.get("context") or {}).get("namespace") or "default"


def _in_cluster_namespace() -> str:
    try:
        with open(IN_CLUSTER_NAMESPACE_FILE, encoding="utf-8") as handle:
            return handle.read().strip() or "default"
    except OSError:
        return "default"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid configuration"
