"""End-to-end fixtures: the demo emulator, a kubeconfig for it, and kdebug run through its real entry point.

Every test gets its own session store, cache and config directory (XDG_* under tmp_path), so the
records a test reads are exactly the ones it made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

# the same cluster access as the attach tests: these fixtures are theirs
from tests.debug.conftest import KDEBUG, all_running, isolated_kdebug_dirs, kubeconfig, run_kdebug


@pytest.fixture
def write_config(tmp_path):
    """Write the user config file ($XDG_CONFIG_HOME/kdebug/config.yaml)."""

    def write(settings: dict) -> Path:
        path = tmp_path / "config" / "kdebug" / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(settings))
        return path

    return write


@pytest.fixture
def sessions(run_kdebug):
    """The records `kdebug sessions list -o json` shows, newest first."""

    def listed(*args: str) -> list[dict]:
        result = run_kdebug("sessions", "list", "-o", "json", *args)
        assert result.code == 0, result.err
        document = json.loads(result.out)
        return document["sessions"] if isinstance(document, dict) else document

    return listed


def console_env(tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    """The environment for a `kdebug` subprocess that shares the test's isolated directories."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.update(
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    env.pop("KDEBUG_CONFIG", None)
    return env


def ephemeral_containers(emulator, namespace: str, pod: str) -> list[dict]:
    return (emulator.get("pods", namespace, pod) or {}).get("spec", {}).get("ephemeralContainers") or []


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


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
    container: dict = {"name": "app", "image": NONROOT_IMAGE if user == "nonroot" else ROOT_IMAGE}
    pod_security: dict = {}
    if user == "nonroot":
        pod_security = {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True}
    if level == "restricted":
        container["securityContext"] = dict(RESTRICTED_CONTAINER)
        # restricted admits no root: a root image gets a uid from the pod, like a real deployment would
        pod_security = pod_security or {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "target", "namespace": ns},
        "spec": {"containers": [container]},
    }
    if pod_security:
        pod["spec"]["securityContext"] = pod_security
    return pod


@pytest.fixture
def place_target(demo_emulator, kubeconfig):
    def place(level: str, user: str) -> str:
        ns = f"psa-{level}"
        demo_emulator.apply(namespace(ns, level))
        demo_emulator.apply(target_pod(ns, level, user))
        demo_emulator.wait_for(lambda: all_running(demo_emulator, ns, "target"), timeout=10)
        return ns

    return place


def add_privileged_debugger(emulator, namespace: str, pod_name: str) -> None:
    """An earlier privileged debugger in the pod: Pod Security re-checks the whole pod on every update."""
    pod = emulator.get("pods", namespace, pod_name)
    pod["spec"]["ephemeralContainers"] = [
        {"name": "old-debugger", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    emulator.apply(pod)  # the emulator re-creates the pod: Pending until its containers run again
    emulator.wait_for(lambda: all_running(emulator, namespace, pod_name), timeout=10)


__all__ = [
    "KDEBUG",
    "console_env",
    "env_of",
    "ephemeral_containers",
    "isolated_kdebug_dirs",
    "kubeconfig",
    "run_kdebug",
]
