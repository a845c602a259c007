"""Fixtures for the security tests: an emulator per test, namespaces at each Pod Security level,
kube clients per user, and pods that run (as root or non-root) or crash-loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kdebug import kube
from kdebug.emulator import Emulator

ROOT_IMAGE = "registry.kdebug.test/demo/web:1.0"  # image config user "0"
NONROOT_IMAGE = "gcr.io/distroless/static-debian12:nonroot"  # image config user 65532
BUSYBOX = "docker.io/library/busybox:1.36.1"
CRASHING_COMMAND = ["sh", "-c", "echo starting; exit 3"]
ENFORCE = "pod-security.kubernetes.io/enforce"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
REVIEW_PATHS = (
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
)

# What a pod needs to be admitted by `restricted` (besides a non-root user).
RESTRICTED_POD_SC = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def mutating_requests(emu: Emulator, since: int = 0) -> list[dict[str, Any]]:
    """Mutating requests after the first `since` log entries, access reviews excluded."""
    return [r for r in emu.requests[since:] if r["method"] in MUTATING and r["path"] not in REVIEW_PATHS]


@dataclass
class Cluster:
    emu: Emulator
    tmp: Path

    def client(self, user: str = "admin", namespace: str = "default") -> kube.KubeClient:
        return kube.connect(str(self.kubeconfig(user, namespace)))

    def kubeconfig(self, user: str = "admin", namespace: str = "default") -> Path:
        return self.emu.write_kubeconfig(
            self.tmp / f"kubeconfig-{user}-{namespace}", user=user, namespace=namespace
        )

    def namespace(self, name: str, level: str | None = None, **labels: str) -> None:
        all_labels = dict(labels)
        if level:
            all_labels[ENFORCE] = level
        self.emu.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": all_labels}}
        )

    def pod(
        self,
        namespace: str,
        name: str = "app",
        *,
        nonroot: bool = False,
        restricted: bool = False,
        command: list[str] | None = None,
        image: str | None = None,
        labels: dict | None = None,
        wait: bool = True,
        owner_references: list[dict] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A pod with container `app`; `restricted` makes it pass the restricted level."""
        container: dict[str, Any] = {
            "name": "app",
            "image": image or (NONROOT_IMAGE if nonroot else ROOT_IMAGE),
        }
        if command:
            container["command"] = command
        spec: dict[str, Any] = {"containers": [container], **extra}
        if restricted:
            spec["securityContext"] = dict(RESTRICTED_POD_SC)
            container["securityContext"] = dict(RESTRICTED_CONTAINER_SC)
        if nonroot:
            spec.setdefault("securityContext", {}).update({"runAsUser": 65532, "runAsGroup": 65532})
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = labels
        if owner_references:
            metadata["ownerReferences"] = owner_references
        self.emu.apply({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
        if wait:
            self.wait_container(namespace, name, "app", "running")
        return self.emu.get("pods", namespace, name) or {}

    def wait_container(
        self,
        namespace: str,
        pod: str,
        container: str,
        state: str,
        reason: str | None = None,
        field: str = "containerStatuses",
    ) -> None:
        def reached() -> bool:
            stored = self.emu.get("pods", namespace, pod) or {}
            for status in (stored.get("status") or {}).get(field) or []:
                if status.get("name") == container:
                    current = (status.get("state") or {}).get(state)
                    return current is not None and (reason is None or current.get("reason") == reason)
            return False

        self.emu.wait_for(reached, timeout=15)

    def fresh_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self.client(namespace=namespace).get(f"/api/v1/namespaces/{namespace}/pods/{name}")


@pytest.fixture
def cluster(emulator: Emulator, tmp_path: Path) -> Cluster:
    return Cluster(emulator, tmp_path)


PodMaker = Callable[..., dict[str, Any]]
