"""Reads kubeconfig files: the merged view kubectl uses, and the static credentials kdebug can use directly.

kubectl's merge rules: with several files in KUBECONFIG, the first file that names a cluster, user or
context wins, and the first `current-context` set wins. Relative file paths resolve against the file
that holds them.

`static_credentials` covers the kubeconfigs that need no code to authenticate (a server, a CA, and a
token, a client certificate or a basic-auth pair). Anything else (exec plugins, auth providers,
impersonation, proxies) returns None and kdebug.kube.client loads it with the official `kubernetes`
package: that large import is paid only by the kubeconfigs that need it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdebug.errors import UsageError
from kdebug.lazy import lazy_module
from kdebug.yamlfiles import load_file

yaml = lazy_module("yaml")  # for yaml.YAMLError; the parse itself loads it (kdebug.yamlfiles)

STATIC_CLUSTER_KEYS = {
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "extensions",
    "disable-compression",
}
STATIC_USER_KEYS = {
    "token",
    "tokenFile",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
    "username",
    "password",
    "extensions",
}


@dataclass
class Entry:
    """One named cluster/user/context and the directory of the file it came from."""

    data: dict[str, Any]
    base_dir: Path


@dataclass
class MergedConfig:
    current_context: str | None = None
    clusters: dict[str, Entry] = field(default_factory=dict)
    users: dict[str, Entry] = field(default_factory=dict)
    contexts: dict[str, Entry] = field(default_factory=dict)


@dataclass(frozen=True)
class StaticCredentials:
    """What a request needs; the token and password stay out of repr (they must never be printed)."""

    server: str
    verify: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    tls_server_name: str | None
    token: str | None = field(default=None, repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)
    ca_data: str | bytes | None = None  # certificate-authority-data, for ssl in memory (PEM text or DER)
    cert_data: bytes | None = None  # client-certificate-data, decoded (kept in memory, never on disk)
    key_data: bytes | None = field(default=None, repr=False)  # client-key-data, decoded


def kubeconfig_paths(explicit: str | None) -> list[Path]:
    raw = explicit or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def load_merged(paths: list[Path]) -> MergedConfig:
    merged = MergedConfig()
    for path in paths:
        try:
            doc = load_file(path) or {}
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UsageError(f"kubeconfig {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"kubeconfig {path}: not a text file") from None
        except yaml.YAMLError:
            raise UsageError(f"kubeconfig {path}: not valid YAML") from None
        except RecursionError:  # libyaml parses up to depth 1000; copying that much nesting recurses
            raise UsageError(f"kubeconfig {path}: nested too deeply") from None
        if not isinstance(doc, dict):
            raise UsageError(f"kubeconfig {path}: expected a mapping at the top level")
        base = path.parent
        merged.current_context = merged.current_context or doc.get("current-context") or None
        for section, inner, target in (
            ("clusters", "cluster", merged.clusters),
            ("users", "user", merged.users),
            ("contexts", "context", merged.contexts),
        ):
            items = doc.get(section) or []
            if not isinstance(items, list):
                raise UsageError(f"kubeconfig {path}: {section} must be a list")
            for item in items:
                if not (isinstance(item, dict) and item.get("name")) or item["name"] in target:
                    continue
                body = item.get(inner) or {}
                if not isinstance(body, dict):
                    raise UsageError(f"kubeconfig {path}: {section[:-1]} {item['name']!r} must be a mapping")
                target[str(item["name"])] = Entry(body, base)
    return merged


def chosen_context(merged: MergedConfig, context: str | None) -> tuple[str, dict[str, Any]]:
    """(name, context dict) of --context or the current context."""
    name = context or merged.current_context
    if context and context not in merged.contexts:
        names = ", ".join(sorted(merged.contexts)) or "none"
        raise UsageError(f"context {context!r} not found in kubeconfig (contexts: {names})")
    if not name or name not in merged.contexts:
        return name or "", {}
    return name, merged.contexts[name].data


def static_credentials(merged: MergedConfig, context: str | None) -> StaticCredentials | None:
    """Credentials for the chosen context when they are static; None when the official loader must decide."""
    _name, ctx = chosen_context(merged, context)
    cluster = merged.clusters.get(ctx.get("cluster", ""))
    user = merged.users.get(ctx.get("user", ""), Entry({}, Path(".")))
    if cluster is None or not cluster.data.get("server"):
        return None
    if set(cluster.data) - STATIC_CLUSTER_KEYS or set(user.data) - STATIC_USER_KEYS:
        return None
    verify = not cluster.data.get("insecure-skip-tls-verify", False)
    token = user.data.get("token") or _read_token_file(user)
    basic = None
    if user.data.get("username") and user.data.get("password"):
        basic = (str(user.data["username"]), str(user.data["password"]))
    ca_data = _ca_data(cluster) if verify else None
    return StaticCredentials(
        server=str(cluster.data["server"]).rstrip("/"),
        verify=verify,
        ca_data=ca_data,
        ca_file=_path_of(cluster, "certificate-authority") if verify and ca_data is None else None,
        cert_file=_path_of(user, "client-certificate"),
        key_file=_path_of(user, "client-key"),
        cert_data=_decoded(user, "client-certificate"),
        key_data=_decoded(user, "client-key"),
        tls_server_name=cluster.data.get("tls-server-name"),
        token=str(token) if token else None,
        basic=basic,
    )


def _read_token_file(user: Entry) -> str | None:
    path = user.data.get("tokenFile")
    if not path:
        return None
    try:
        return _resolve(user, path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"kubeconfig tokenFile {path}: {exc.strerror}") from None


def _resolve(entry: Entry, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else entry.base_dir / candidate


def _ca_data(cluster: Entry) -> str | bytes | None:
    """certificate-authority-data decoded: ssl takes CA certificates from memory (no temporary file)."""
    data = cluster.data.get("certificate-authority-data")
    if not data:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise UsageError("kubeconfig: certificate-authority-data is not valid base64") from None
    return raw.decode("ascii") if raw.lstrip().startswith(b"-----BEGIN") else raw


def _decoded(entry: Entry, key: str) -> bytes | None:
    """`key-data` decoded; it stays in memory (the client hands it to ssl without leaving a file)."""
    data = entry.data.get(f"{key}-data")
    if not data:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        raise UsageError(f"kubeconfig: {key}-data is not valid base64") from None


def _path_of(entry: Entry, key: str) -> str | None:
    """The path `key` names, unless `key-data` is given (which wins, as in kubectl)."""
    if entry.data.get(f"{key}-data"):
        return None
    path = entry.data.get(key)
    if not path:
        return None
    resolved = _resolve(entry, path)
    if not resolved.exists():
        raise UsageError(f"kubeconfig: {key} {resolved} does not exist")
    return str(resolved)
