"""The target's effective user and whether a debugger can read its /proc/1/root."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kdebug.security.users import (
    EffectiveUser,
    debugger_can_read_target,
    effective_user,
    parse_image_user,
    permitted_capabilities,
    proc_root_readable,
    runs_as_non_root,
)
from tests.fixtures.pods import build_pod


def make_pod(container_sc: dict | None = None, pod_sc: dict | None = None) -> dict:
    return build_pod(
        typed=False,
        name="shop",
        namespace="lab",
        image="gcr.io/distroless/static",
        container_security_context=container_sc,
        security_context=pod_sc,
    )


@pytest.mark.parametrize(
    ("image_user", "expected"),
    [
        pytest.param("65532", EffectiveUser(65532, 65532), id="distroless nonroot uid only"),
        pytest.param("65532:65532", EffectiveUser(65532, 65532), id="uid and gid"),
        pytest.param("nonroot", EffectiveUser(65532, 65532), id="nonroot name"),
        pytest.param("nonroot:nonroot", EffectiveUser(65532, 65532), id="nonroot name and group"),
        pytest.param("1000:2000", EffectiveUser(1000, 2000), id="arbitrary ids"),
        pytest.param("1000", EffectiveUser(1000, None), id="uid without group, unknown primary group"),
        pytest.param("", EffectiveUser(0, 0), id="no user in config is root"),
        pytest.param("0", EffectiveUser(0, 0), id="explicit root"),
        pytest.param("appuser", EffectiveUser(None, None), id="unknown name"),
        pytest.param(None, EffectiveUser(None, None), id="config unknown"),
    ],
)
def test_parse_image_user(image_user: str | None, expected: EffectiveUser) -> None:
    assert parse_image_user(image_user) == expected


@pytest.mark.parametrize(
    ("pod", "image_user", "expected"),
    [
        pytest.param(make_pod(), "65532", EffectiveUser(65532, 65532), id="image user only"),
        pytest.param(
            make_pod(pod_sc={"runAsUser": 1000, "runAsGroup": 3000}),
            "65532",
            EffectiveUser(1000, 3000),
            id="pod securityContext over image",
        ),
        pytest.param(
            make_pod({"runAsUser": 2000, "runAsGroup": 2001}, {"runAsUser": 1000, "runAsGroup": 3000}),
            "65532",
            EffectiveUser(2000, 2001),
            id="container securityContext over pod",
        ),
        pytest.param(
            make_pod({"runAsGroup": 4000}, {"runAsUser": 1000}),
            "",
            EffectiveUser(1000, 4000),
            id="fields resolved one by one",
        ),
        pytest.param(
            make_pod({"runAsUser": 65532}),
            "",
            EffectiveUser(65532, 65532),
            id="runAsUser without group takes the known primary group",
        ),
        pytest.param(
            make_pod({"runAsUser": 0}), "nonroot", EffectiveUser(0, 0), id="forced root over nonroot image"
        ),
        pytest.param(make_pod(), None, EffectiveUser(None, None), id="nothing known"),
    ],
)
def test_effective_user(pod: dict, image_user: str | None, expected: EffectiveUser) -> None:
    assert effective_user(pod, "app", image_user) == expected


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        pytest.param(EffectiveUser(65532, 65532), True, id="nonroot"),
        pytest.param(EffectiveUser(0, 0), False, id="root"),
        pytest.param(EffectiveUser(None, None), None, id="unknown"),
    ],
)
def test_runs_as_non_root(user: EffectiveUser, expected: bool | None) -> None:
    assert runs_as_non_root(user) is expected


@pytest.mark.parametrize(
    ("security_context", "uid", "expected"),
    [
        pytest.param(
            {"capabilities": {"add": ["SYS_PTRACE"]}}, 65532, frozenset(), id="non-root holds nothing"
        ),
        pytest.param(
            {"capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}},
            0,
            frozenset({"NET_RAW"}),
            id="drop all then add",
        ),
        pytest.param({"privileged": True}, 0, frozenset({"ALL"}), id="privileged root holds all"),
    ],
)
def test_permitted_capabilities(security_context: dict, uid: int, expected: frozenset[str]) -> None:
    assert permitted_capabilities(security_context, uid) == expected


def test_root_holds_runtime_defaults_plus_added() -> None:
    caps = permitted_capabilities({"capabilities": {"add": ["SYS_PTRACE"], "drop": ["KILL"]}}, 0)
    assert "SYS_PTRACE" in caps and "CHOWN" in caps and "KILL" not in caps


DEFAULT_ROOT_CAPS = permitted_capabilities(None, 0)


@pytest.mark.parametrize(
    ("target", "debugger", "debugger_caps", "expected"),
    [
        # the four cases seen with real containers (k8s-captures/README.md)
        pytest.param(
            EffectiveUser(65532, 65532),
            EffectiveUser(0, 0),
            DEFAULT_ROOT_CAPS,
            False,
            id="root debugger with default caps, nonroot target: denied",
        ),
        pytest.param(
            EffectiveUser(65532, 65532),
            EffectiveUser(0, 0),
            DEFAULT_ROOT_CAPS | {"SYS_PTRACE"},
            True,
            id="root debugger with SYS_PTRACE: readable",
        ),
        pytest.param(
            EffectiveUser(65532, 65532),
            EffectiveUser(65532, 65532),
            frozenset(),
            True,
            id="same uid and gid: readable",
        ),
        pytest.param(
            EffectiveUser(65532, 65532),
            EffectiveUser(65532, 0),
            frozenset(),
            False,
            id="same uid, gid 0: denied",
        ),
        pytest.param(
            EffectiveUser(0, 0),
            EffectiveUser(0, 0),
            DEFAULT_ROOT_CAPS,
            True,
            id="root debugger, root target: readable",
        ),
        pytest.param(
            EffectiveUser(0, 0),
            EffectiveUser(65532, 65532),
            frozenset(),
            False,
            id="nonroot debugger, root target: denied",
        ),
        pytest.param(
            EffectiveUser(None, None),
            EffectiveUser(65532, 65532),
            frozenset(),
            None,
            id="unknown target: unknown",
        ),
        pytest.param(
            EffectiveUser(None, None),
            EffectiveUser(0, 0),
            frozenset({"ALL"}),
            True,
            id="privileged root reads any target",
        ),
    ],
)
def test_proc_root_readable(
    target: EffectiveUser, debugger: EffectiveUser, debugger_caps: frozenset[str], expected: bool | None
) -> None:
    assert proc_root_readable(target, debugger, debugger_caps) is expected


def test_root_debugger_cannot_read_root_target_with_more_capabilities() -> None:
    target_caps = DEFAULT_ROOT_CAPS | {"NET_ADMIN"}
    assert (
        proc_root_readable(EffectiveUser(0, 0), EffectiveUser(0, 0), DEFAULT_ROOT_CAPS, target_caps) is False
    )


@pytest.mark.parametrize(
    ("pod", "debugger", "expected"),
    [
        pytest.param(make_pod(), {"name": "kdebug-x"}, False, id="plain root debugger, nonroot image target"),
        pytest.param(
            make_pod(pod_sc={"runAsUser": 65532, "runAsGroup": 65532}),
            {"name": "kdebug-x"},
            True,
            id="debugger inherits the pod's user",
        ),
        pytest.param(
            make_pod(),
            {"name": "kdebug-x", "securityContext": {"runAsUser": 65532, "runAsGroup": 65532}},
            True,
            id="debugger set to the target's ids",
        ),
        pytest.param(
            make_pod(),
            {"name": "kdebug-x", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}},
            True,
            id="root debugger with SYS_PTRACE",
        ),
    ],
)
def test_debugger_can_read_target(pod: dict, debugger: dict, expected: bool) -> None:
    assert debugger_can_read_target(pod, "app", "65532", debugger, "") is expected


def test_pure_modules_load_no_client_or_cli_libraries() -> None:
    code = (
        "import sys, kdebug.security.users, kdebug.security.profiles, kdebug.security.permissions\n"
        "import kdebug.debug.copy_spec, kdebug.doctor.checks\n"
        "print(sorted(m for m in ('kubernetes', 'typer', 'rich', 'yaml', 'aiohttp') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"
