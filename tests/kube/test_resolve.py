"""kube.resolve against the emulator over a real socket: a hostile TARGET or -n stays one quoted segment.

Unquoted, each of these names would reach pod `web` (or its query string) instead of being looked up
as the name it is; quoted, the server is asked for exactly that name, finds nothing, and says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kdebug.errors import NotFoundError, UsageError
from kdebug.kube import client as kube
from kdebug.kube import paths, resolve
from kdebug.kube.api import KubeApi
from kdebug_emulator import Emulator


@pytest.fixture
def demo_client(demo_emulator: Emulator, tmp_path: Path) -> KubeApi:
    return kube.connect(str(demo_emulator.write_kubeconfig(tmp_path / "kubeconfig", namespace="demo")))


@pytest.mark.parametrize(
    "unquoted",
    [
        pytest.param("/api/v1/namespaces/demo/pods/web?/pods/x", id="slash and question mark in ns"),
        pytest.param("/api/v1/namespaces/demo/pods/web?dryRun=All", id="query in name"),
        pytest.param("/api/v1/namespaces/demo/pods/web#frag", id="fragment in name"),
    ],
)
def test_unquoted_names_would_reach_another_object(demo_client: KubeApi, unquoted: str) -> None:
    # The hazard the quoting guards against is real on this server.
    assert demo_client.get(unquoted)["metadata"]["name"] == "web"


def test_a_hostile_namespace_reaches_the_server_as_one_segment(
    demo_emulator: Emulator, demo_client: KubeApi
) -> None:
    # resolve does not check the namespace (the CLI does, kdebug.kube.names): quoting still holds it
    before = len(demo_emulator.requests)
    with pytest.raises(NotFoundError) as info:
        resolve.resolve_target(demo_client, "demo/pods/web?", "x", None, None)
    assert '"x" not found in namespace demo/pods/web?' in info.value.message
    # The emulator logs the decoded path: the whole name arrived inside it, no query came along, and
    # the server looked for exactly that name (404), not for pod web.
    first = demo_emulator.requests[before]
    decoded_path = "/api/v1/namespaces/demo/pods/web?/pods/x"
    assert (first["method"], first["path"], first["query"], first["code"]) == ("GET", decoded_path, "", 404)
    assert all(r["query"] == "" for r in demo_emulator.requests[before:])


HOSTILE_NAMES = [
    pytest.param("Pod", "web?dryRun=All", "/api/v1/namespaces/demo/pods/web?dryRun=All", id="query"),
    pytest.param("Pod", "web#frag", "/api/v1/namespaces/demo/pods/web#frag", id="fragment"),
    pytest.param("Pod", "web?x=1", "/api/v1/namespaces/demo/pods/web?x=1", id="pod/ form"),
    pytest.param(
        "Deployment",
        "shop?dryRun=All",
        "/apis/apps/v1/namespaces/demo/deployments/shop?dryRun=All",
        id="workload",
    ),
]


@pytest.mark.parametrize(("kind", "name", "decoded_path"), HOSTILE_NAMES)
def test_a_hostile_name_reaches_the_server_as_one_segment(
    demo_emulator: Emulator, demo_client: KubeApi, kind: str, name: str, decoded_path: str
) -> None:
    # TARGETs are refused before this (below); the quoting behind that check still holds on its own
    before = len(demo_emulator.requests)
    with pytest.raises(NotFoundError):
        demo_client.get(paths.object_path(kind, "demo", name))
    first = demo_emulator.requests[before]
    assert (first["method"], first["path"], first["query"], first["code"]) == ("GET", decoded_path, "", 404)


@pytest.mark.parametrize("target", ["web?dryRun=All", "web#frag", "pod/web?x=1", "deploy/shop?dryRun=All"])
def test_resolve_refuses_a_hostile_target_before_any_request(
    demo_emulator: Emulator, demo_client: KubeApi, target: str
) -> None:
    before = len(demo_emulator.requests)
    with pytest.raises(UsageError) as info:
        resolve.resolve_target(demo_client, "demo", target, None, None)
    assert f"TARGET '{target}'" in info.value.message and "DNS-1123 subdomain" in info.value.message
    assert demo_emulator.requests[before:] == []


def test_plain_names_still_resolve(demo_client: KubeApi) -> None:
    assert resolve.resolve_target(demo_client, "demo", "web", None, None).pod["metadata"]["name"] == "web"
