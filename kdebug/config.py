"""Loads the user's config file; each feature reads its own section from the returned dict.

Location: $KDEBUG_CONFIG, else $XDG_CONFIG_HOME/kdebug/config.yaml (~/.config/kdebug/config.yaml).
A missing file is an empty config; an unreadable or malformed one is a UsageError naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kdebug.errors import UsageError
from kdebug.lazy import lazy_module
from kdebug.yamlfiles import load_file, safe_load

yaml = lazy_module("yaml")  # for yaml.YAMLError; the parse itself loads it (kdebug.yamlfiles)


def config_path() -> Path:
    explicit = os.environ.get("KDEBUG_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kdebug" / "config.yaml"


def data_dir() -> Path:
    """Where kdebug keeps its data (session store, caches): $XDG_DATA_HOME/kdebug."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kdebug"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kdebug"


def load_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if os.environ.get("KDEBUG_CONFIG") and path == config_path():
            raise UsageError(f"config file {path} (from KDEBUG_CONFIG) does not exist") from None
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"config file {path}{where}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path}: expected a mapping at the top level")
    return data


CLUSTER_EXTENSION = "kdebug.dev/config"


def cluster_settings(kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    """kdebug settings a kubeconfig carries for its cluster: the `kdebug.dev/config` named extension.

    A platform team can ship per-cluster settings (registry mirrors for an air-gapped cluster, insecure
    local registries) inside the kubeconfig it hands out; `kdebug demo` uses this for its registry.
    Anything unreadable here is simply absent: kube.connect reports kubeconfig problems properly.
    """
    paths = [kubeconfig] if kubeconfig else _kubeconfig_paths()
    docs = []
    for path in paths:
        try:
            data = load_file(Path(path).expanduser())
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            docs.append(data)
    current = context or next((d.get("current-context") for d in docs if d.get("current-context")), None)
    cluster_name = _first_named(docs, "contexts", current).get("context", {}).get("cluster")
    cluster = _first_named(docs, "clusters", cluster_name).get("cluster", {})
    for ext in cluster.get("extensions") or []:
        if not isinstance(ext, dict) or ext.get("name") != CLUSTER_EXTENSION:
            continue
        if isinstance(ext.get("extension"), dict):
            return ext["extension"]
    return {}


def _kubeconfig_paths() -> list[str]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [str(Path.home() / ".kube" / "config")]


def _first_named(docs: list[dict[str, Any]], section: str, name: str | None) -> dict[str, Any]:
    if not name:
        return {}
    for doc in docs:
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
    return {}


def merge_settings(user: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    """The user's config over the cluster's settings; mirrors and insecure registries from both."""
    merged = {**cluster, **user}
    if "mirrors" in cluster and "mirrors" in user:
        merged["mirrors"] = _as_mirror_list(user["mirrors"]) + _as_mirror_list(cluster["mirrors"])
    insecure = list((user.get("registry") or {}).get("insecure") or [])
    for host in (cluster.get("registry") or {}).get("insecure") or []:
        if host not in insecure:
            insecure.append(host)
    if insecure:
        registry = {**(cluster.get("registry") or {}), **(user.get("registry") or {})}
        merged["registry"] = {**registry, "insecure": insecure}
    return merged


def _as_mirror_list(mirrors: Any) -> list[Any]:
    if isinstance(mirrors, dict):
        return [{"from": k, "to": v} for k, v in mirrors.items()]
    return list(mirrors or [])


def effective_config(kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    """The user's config file merged over the current cluster's kubeconfig settings."""
    return merge_settings(load_config(), cluster_settings(kubeconfig, context))
