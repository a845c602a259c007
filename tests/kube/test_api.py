"""kdebug.kube.api: KubeClient is the KubeApi protocol, and websocket-client's WebSocket is WebSocketLike.

isinstance on a runtime_checkable protocol only sees that the members exist; the signature comparison
also holds the parameter names, kinds, defaults and annotations to the protocol's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import websocket

from kdebug.kube.api import KubeApi, WebSocketLike
from kdebug.kube.client import ClusterConfig, KubeClient, Transport


def _members(protocol: type) -> list[str]:
    return sorted(name for name in vars(protocol) if not name.startswith("_"))


def _offline_client() -> KubeClient:
    transport = Transport("http://127.0.0.1:1", True, None, None, None, None, dict)
    return KubeClient(transport, ClusterConfig("http://127.0.0.1:1", "default", "ctx"))


def test_kube_client_is_a_kube_api() -> None:
    client: KubeApi = _offline_client()
    assert isinstance(client, KubeApi)


@pytest.mark.parametrize("name", _members(KubeApi))
def test_kube_client_members_match_the_protocol(name: str) -> None:
    declared = inspect.getattr_static(KubeApi, name)
    implemented = inspect.getattr_static(KubeClient, name)
    if isinstance(declared, property):
        assert isinstance(implemented, property)
    else:
        assert inspect.signature(implemented) == inspect.signature(declared)


def test_cluster_is_an_attribute_of_every_client() -> None:
    assert "cluster" in KubeApi.__annotations__
    assert isinstance(_offline_client().cluster, ClusterConfig)


def test_websocket_client_is_websocket_like() -> None:
    assert isinstance(websocket.WebSocket(), WebSocketLike)


@pytest.mark.parametrize("name", [n for n in _members(WebSocketLike) if n != "subprotocol"])
def test_websocket_methods_take_the_arguments_kdebug_passes(name: str) -> None:
    # Names and kinds only: websocket-client's own annotations and defaults are its business.
    def shape(function: Callable[..., object]) -> list[tuple[str, str]]:
        return [(p.name, p.kind.name) for p in inspect.signature(function).parameters.values()]

    assert shape(getattr(websocket.WebSocket, name)) == shape(getattr(WebSocketLike, name))
