"""Objects the end-to-end tests place in the demo cluster: namespaces at a Pod Security level, pods they
admit, and an earlier privileged debugger."""

from __future__ import annotations

from tests.fixtures.kdebug_cli import all_running
from tests.fixtures.pods import build_pod

NONROOT_IMAGE = "gcr.io/distroless/static-debian12:nonroot"
ROOT_IMAGE = "registry.kdebug.test/demo/web:1.0"  # scratch: runs as root unless the pod says otherwise
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def namespace(name: str, level: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": level}},
    }


def target_pod(ns: str, level: str, user: str) -> dict:
    """A pod the namespace admits: root image or nonroot image (65532); restricted pods comply."""
    pod_security: dict | None = None
    if user == "nonroot":
        pod_security = {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True}
    if level == "restricted":
        # restricted admits no root: a root image gets a uid from the pod, like a real deployment would
        pod_security = pod_security or {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True}
    return build_pod(
        name="target",
        namespace=ns,
        image=NONROOT_IMAGE if user == "nonroot" else ROOT_IMAGE,
        container_security_context=RESTRICTED_CONTAINER if level == "restricted" else None,
        security_context=pod_security,
    )


def add_privileged_debugger(emulator, namespace: str, pod_name: str) -> None:
    """An earlier privileged debugger in the pod: Pod Security re-checks the whole pod on every update."""
    pod = emulator.get("pods", namespace, pod_name)
    pod["spec"]["ephemeralContainers"] = [
        {"name": "old-debugger", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    emulator.apply(pod)  # the emulator re-creates the pod: Pending until its containers run again
    emulator.wait_for(lambda: all_running(emulator, namespace, pod_name), timeout=10)
