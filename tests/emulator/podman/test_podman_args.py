"""PURE: pod spec -> podman flags, runAsNonRoot refusals, ulimits and registries.conf (no podman needed)."""

from __future__ import annotations

from typing import Any

import pytest

from kdebug_emulator.podman_images import local_reference, registries_conf
from kdebug_emulator.runtimes.podman import (
    containers_conf,
    podman_create_args,
    rfc3339_from_podman,
    run_as_non_root_refusal,
    security_args,
)
from tests.fixtures.pods import build_pod

POD = {"metadata": {"name": "web", "namespace": "demo", "uid": "u-1"}, "spec": {}}


def with_pod_context(context: dict[str, Any]) -> dict[str, Any]:
    return build_pod(
        typed=False, name="web", namespace="demo", uid="u-1", containers=(), security_context=context
    )


def test_every_container_gets_the_pods_resolv_conf_like_the_kubelet_mounts_it() -> None:
    container = {"name": "app", "image": "busybox"}
    args = podman_create_args(
        POD, container, name="n", podman_pod="p", label="l", image_user="", resolv_conf="/run/p/resolv.conf"
    )
    assert args[args.index("--volume") + 1] == "/run/p/resolv.conf:/etc/resolv.conf:ro"


def test_resolv_conf_is_cluster_first_for_the_namespace() -> None:
    from kdebug_emulator.runtimes.podman import cluster_first_resolv_conf

    assert cluster_first_resolv_conf("shop").splitlines() == [
        "search shop.svc.cluster.local svc.cluster.local cluster.local",
        "nameserver 10.96.0.10",
        "options ndots:5",
    ]


@pytest.mark.parametrize(
    "pod, container, image_user, expected",
    [
        (POD, {"securityContext": {"runAsUser": 65532, "runAsGroup": 65532}}, "", ["--user", "65532:65532"]),
        (with_pod_context({"runAsUser": 1000}), {}, "", ["--user", "1000"]),
        (with_pod_context({"runAsUser": 1000}), {"securityContext": {"runAsUser": 0}}, "", ["--user", "0"]),
        (POD, {"securityContext": {"runAsGroup": 5}}, "65532", ["--user", "65532:5"]),
        (
            POD,
            {"securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}},
            "",
            ["--cap-add", "SYS_PTRACE"],
        ),
        (
            POD,
            {"securityContext": {"runAsUser": 65532, "capabilities": {"add": ["SYS_PTRACE"]}}},
            "",
            ["--user", "65532"],
        ),
        (POD, {"securityContext": {"capabilities": {"drop": ["ALL"]}}}, "", ["--cap-drop", "ALL"]),
        (
            POD,
            {"securityContext": {"allowPrivilegeEscalation": False}},
            "",
            ["--security-opt", "no-new-privileges"],
        ),
        (
            POD,
            {"securityContext": {"readOnlyRootFilesystem": True}},
            "",
            ["--read-only", "--read-only-tmpfs=false"],
        ),
    ],
    ids=[
        "user-and-group",
        "pod-user",
        "container-user-wins",
        "group-keeps-image-user",
        "cap-add-for-root",
        "cap-add-dropped-for-non-root",
        "cap-drop",
        "no-new-privileges",
        "read-only-root",
    ],
)
def test_security_context_flags(pod: dict, container: dict, image_user: str, expected: list[str]) -> None:
    flags = security_args(pod, container, image_user)
    assert flags[: len(expected)] == expected


@pytest.mark.parametrize(
    "context, expected",
    [
        ({}, True),
        ({"seccompProfile": {"type": "Unconfined"}}, True),
        ({"seccompProfile": {"type": "RuntimeDefault"}}, False),
    ],
    ids=["unset-is-unconfined", "unconfined", "runtime-default-keeps-podman-profile"],
)
def test_seccomp_mapping(context: dict, expected: bool) -> None:
    flags = security_args(POD, {"securityContext": context}, "")
    assert ("seccomp=unconfined" in flags) == expected


def test_privileged_needs_no_seccomp_flag() -> None:
    assert security_args(POD, {"securityContext": {"privileged": True}}, "") == ["--privileged"]


def test_command_replaces_entrypoint_and_args_follow_the_image() -> None:
    container = {"name": "c", "image": "busybox", "command": ["sh", "-c"], "args": ["echo hi"]}
    args = podman_create_args(POD, container, name="n", podman_pod="p", label="l", image_user="")
    assert args[args.index("--entrypoint") :] == ["--entrypoint", '["sh", "-c"]', "busybox", "echo hi"]


def test_ephemeral_target_joins_the_pid_namespace_by_path() -> None:
    container = {"name": "d", "image": "busybox"}
    args = podman_create_args(
        POD, container, name="n", podman_pod="p", label="l", image_user="", target_pid=42
    )
    assert args[args.index("--pid") + 1] == "ns:/proc/42/ns/pid"


@pytest.mark.parametrize(
    "pod, container, image_user, expected",
    [
        (
            POD,
            {"name": "app", "securityContext": {"runAsNonRoot": True}},
            "",
            'container has runAsNonRoot and image will run as root (pod: "web_demo(u-1)", container: app)',
        ),
        (
            POD,
            {"name": "app", "securityContext": {"runAsNonRoot": True}},
            "nonroot",
            "container has runAsNonRoot and image has non-numeric user (nonroot), "
            'cannot verify user is non-root (pod: "web_demo(u-1)", container: app)',
        ),
        (
            with_pod_context({"runAsNonRoot": True}),
            {"name": "app", "securityContext": {"runAsUser": 0}},
            "65532",
            'container\'s runAsUser breaks non-root policy (pod: "web_demo(u-1)", container: app)',
        ),
        (with_pod_context({"runAsNonRoot": True}), {"name": "app"}, "65532", None),
        (POD, {"name": "app"}, "", None),
    ],
    ids=["root-image", "non-numeric-user", "run-as-user-0", "nonroot-image", "not-asked"],
)
def test_run_as_non_root_refusal(pod: dict, container: dict, image_user: str, expected: str | None) -> None:
    assert run_as_non_root_refusal(pod, container, image_user) == expected


def test_containers_conf_carries_the_ulimits() -> None:
    conf = containers_conf(["nofile=20000:20000", "nproc=4096:4096"], ["CHOWN"])
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]' in conf.splitlines()


def test_registries_conf_rewrites_distroless_to_the_local_registry() -> None:
    conf = registries_conf("127.0.0.1:5000")
    assert 'prefix = "gcr.io/distroless"\nlocation = "127.0.0.1:5000/distroless"\ninsecure = true' in conf


def test_local_reference_of_an_upstream_name() -> None:
    ref = local_reference("gcr.io/distroless/base-debian12:debug-nonroot", "127.0.0.1:5000")
    assert ref == "127.0.0.1:5000/distroless/base-debian12:debug-nonroot"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-27T06:48:32.123456789Z", "2026-11-27T06:48:32Z"),
        ("2026-11-27T08:48:32.5+02:00", "2026-11-27T06:48:32Z"),
        ("2026-11-27T06:48:32Z", "2026-11-27T06:48:32Z"),
    ],
    ids=["nanoseconds-utc", "offset", "whole-seconds"],
)
def test_podman_times_become_rfc3339_utc(text: str, expected: str) -> None:
    assert rfc3339_from_podman(text) == expected
