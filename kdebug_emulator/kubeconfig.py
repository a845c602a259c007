"""PURE: the kubeconfig document that points kubectl (and kdebug) at the emulator."""

from __future__ import annotations

import base64
from typing import Any


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_kubeconfig(
    *,
    server: str,
    ca_pem: bytes | None,
    user: str,
    namespace: str = "default",
    context: str = "kdebug-emulator",
    cluster: str = "kdebug-emulator",
    token: str | None = None,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One cluster, one user, one context (the current one). Credentials are embedded as data.

    `extensions` become the cluster's named extensions (kubeconfig `NamedExtension`s), which kubectl
    ignores and kdebug reads (`kdebug.dev/config`: per-cluster settings such as registry mirrors).
    """
    cluster_entry: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster_entry["certificate-authority-data"] = _b64(ca_pem)
    if extensions:
        cluster_entry["extensions"] = [{"name": k, "extension": v} for k, v in extensions.items()]
    user_entry: dict[str, Any] = {}
    if token is not None:
        user_entry["token"] = token
    if client_cert_pem is not None and client_key_pem is not None:
        user_entry["client-certificate-data"] = _b64(client_cert_pem)
        user_entry["client-key-data"] = _b64(client_key_pem)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [
            {"name": context, "context": {"cluster": cluster, "user": user, "namespace": namespace}}
        ],
        "current-context": context,
    }
