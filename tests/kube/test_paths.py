"""kdebug.kube.paths: every segment quoted, so a name can never reach another object or a query."""

from __future__ import annotations

import pytest

from kdebug.kube import paths


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        pytest.param(paths.pod_path("demo", "web"), "/api/v1/namespaces/demo/pods/web", id="pod"),
        pytest.param(
            paths.pod_path("demo", "web", "ephemeralcontainers"),
            "/api/v1/namespaces/demo/pods/web/ephemeralcontainers",
            id="subresource",
        ),
        pytest.param(paths.pods_path(None), "/api/v1/pods", id="pods in all namespaces"),
        pytest.param(
            paths.object_path("Deployment", "shop", "web"),
            "/apis/apps/v1/namespaces/shop/deployments/web",
            id="deployment",
        ),
        pytest.param(paths.object_path("Job", "ns", "x"), "/apis/batch/v1/namespaces/ns/jobs/x", id="job"),
        pytest.param(paths.namespace_path("demo"), "/api/v1/namespaces/demo", id="namespace"),
        pytest.param(paths.node_path("node-1"), "/api/v1/nodes/node-1", id="node"),
        pytest.param(paths.node_path("n/../x?y"), "/api/v1/nodes/n%2F..%2Fx%3Fy", id="hostile node"),
        pytest.param(
            paths.collection_path("ReplicaSet", "shop"), "/apis/apps/v1/namespaces/shop/replicasets", id="rs"
        ),
    ],
)
def test_paths_have_the_api_servers_shape(built: str, expected: str) -> None:
    assert built == expected


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        pytest.param(
            "demo/pods/web?", "x", "/api/v1/namespaces/demo%2Fpods%2Fweb%3F/pods/x", id="slash in ns"
        ),
        pytest.param("demo", "web?dryRun=All", "/api/v1/namespaces/demo/pods/web%3FdryRun%3DAll", id="query"),
        pytest.param("demo", "web#frag", "/api/v1/namespaces/demo/pods/web%23frag", id="fragment"),
        pytest.param("demo", "wéb", "/api/v1/namespaces/demo/pods/w%C3%A9b", id="non-ascii"),
    ],
)
def test_hostile_names_stay_one_segment(namespace: str, name: str, expected: str) -> None:
    built = paths.pod_path(namespace, name)
    assert built == expected
    assert "?" not in built and "#" not in built
    assert built.count("/") == 6
