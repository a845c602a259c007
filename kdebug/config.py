"""Loads the user's config file; each feature reads its own section from the returned dict.

Location: $KDEBUG_CONFIG, else $XDG_CONFIG_HOME/kdebug/config.yaml (~/.config/kdebug/config.yaml).
A missing file is an empty config; an unreadable, oversized (over 1 MiB) or malformed one, or one whose
mirrors/registry/allowed_images/catalog sections have the wrong shape, is a UsageError naming the file.
A kubeconfig may add mirrors and registry settings for its cluster, nothing else (CLUSTER_KEYS).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kdebug.console.sanitize import terminal_safe
from kdebug.errors import UsageError
from kdebug.lazy import lazy_module
from kdebug.yamlfiles import load_file, safe_load

yaml = lazy_module("yaml")  # for yaml.YAMLError; the parse itself loads it (kdebug.yamlfiles)
catalogs = lazy_module("kdebug.images.catalog")  # the sections' shapes: PURE, loaded with the first config


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


MAX_CONFIG_BYTES = 1024 * 1024  # a config file is a few lines: more is a mistake (or /dev/zero)


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The user's config file as a mapping, its sections' shapes checked; every problem a UsageError
    naming the file."""
    path = path or config_path()
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        if os.environ.get("KDEBUG_CONFIG") and path == config_path():
            raise UsageError(f"config file {path} (from KDEBUG_CONFIG) does not exist") from None
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UsageError(f"config file {path} is larger than 1 MiB")
    data = _parse_document(raw, f"config file {path}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path}: expected a mapping at the top level")
    _check_sections(data, f"config file {path}")
    return data


def _parse_document(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        return safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {terminal_safe(str(problem), one_line=True)[:120]}" if problem else ""
        raise UsageError(f"{source}{where}: not valid YAML{detail}") from None
    except RecursionError:  # only without libyaml, whose parser stops at depth 1000 by itself
        raise UsageError(f"{source}: not valid YAML: nested too deeply") from None


def _check_sections(settings: dict[str, Any], source: str) -> None:
    """The sections the image catalog reads (mirrors, registry, allowed_images, catalog), checked for
    shape before they are merged: a bad one is one line naming `source`, never a traceback later."""
    try:
        catalogs.check_sections(settings)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc.message}", hint=exc.hint) from None


CLUSTER_EXTENSION = "kdebug.dev/config"
# What a kubeconfig may set. A kubeconfig is often handed out by others (a platform team, a vendor, a
# colleague): it may point kdebug at the cluster's registries (mirrors for an air-gapped cluster,
# insecure local registries, as `kdebug demo` does), never weaken the user's own policy (recording,
# the session store, the catalog, the allowlist, the debug image).
CLUSTER_KEYS = ("mirrors", "registry")


def cluster_settings(kubeconfig: str | None, context: str | None) -> tuple[dict[str, Any], str]:
    """kdebug settings a kubeconfig carries for its cluster (the `kdebug.dev/config` named extension),
    with the file they came from ("" when none).

    Anything unreadable here is simply absent: kube.connect reports kubeconfig problems properly.
    """
    paths = [kubeconfig] if kubeconfig else _kubeconfig_paths()
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        try:
            data = load_file(Path(path).expanduser())
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
            continue
        if isinstance(data, dict):
            docs.append((str(path), data))
    current = context or next((d.get("current-context") for _, d in docs if d.get("current-context")), None)
    context_entry = _first_named(docs, "contexts", current)[1].get("context")
    cluster_name = context_entry.get("cluster") if isinstance(context_entry, dict) else None
    source, cluster_entry = _first_named(docs, "clusters", cluster_name)
    cluster = cluster_entry.get("cluster")
    extensions = cluster.get("extensions") if isinstance(cluster, dict) else None
    for ext in extensions if isinstance(extensions, list) else []:
        if not isinstance(ext, dict) or ext.get("name") != CLUSTER_EXTENSION:
            continue
        if isinstance(ext.get("extension"), dict):
            return ext["extension"], source
    return {}, ""


def _kubeconfig_paths() -> list[str]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [str(Path.home() / ".kube" / "config")]


def _first_named(
    docs: list[tuple[str, dict[str, Any]]], section: str, name: object
) -> tuple[str, dict[str, Any]]:
    if not name:
        return "", {}
    for source, doc in docs:
        entries = doc.get(section)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return source, entry
    return "", {}


def trusted_cluster_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The part of a kubeconfig's settings kdebug accepts (CLUSTER_KEYS), and the keys it ignores."""
    kept = {key: value for key, value in settings.items() if key in CLUSTER_KEYS}
    # the names come from someone else's file: terminal-safe and short for the warning line
    ignored = sorted(terminal_safe(str(key), one_line=True)[:40] for key in settings if key not in kept)
    return kept, ignored


def ignored_keys_warning(ignored: list[str], source: str) -> str:
    listed = ", ".join(ignored[:8]) + (f" and {len(ignored) - 8} more" if len(ignored) > 8 else "")
    return (
        f"kdebug: warning: ignoring {listed} in the {CLUSTER_EXTENSION} extension of kubeconfig {source}:"
        f" a kubeconfig may set only mirrors and registry (others may have written it);"
        f" put the rest in your config file ({config_path()})"
    )


def merge_settings(user: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    """The user's config over the cluster's settings; mirrors and insecure registries from both.

    Both are checked (_check_sections) before they get here."""
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


def effective_config(
    kubeconfig: str | None, context: str | None, warn: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The user's config file merged over what the current cluster's kubeconfig may set (CLUSTER_KEYS);
    the keys it may not set are ignored with one warning line (`warn`, default stderr)."""
    user = load_config()
    settings, source = cluster_settings(kubeconfig, context)
    cluster, ignored = trusted_cluster_settings(settings)
    if ignored:
        (warn or _warn)(ignored_keys_warning(ignored, source))
    _check_sections(cluster, f"kubeconfig {source}: {CLUSTER_EXTENSION}")
    return merge_settings(user, cluster)


def _warn(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
