"""`attach`, `run` and `inspect --spec` build the debug container one way, through the security decision."""

from __future__ import annotations

import json

import pexpect
import pytest

from kdebug.errors import ExitCode
from tests.fixtures.cluster import mutating_requests
from tests.fixtures.kdebug_cli import KDEBUG, console_env, ephemeral_containers


def test_run_without_profile_gets_a_profile_a_restricted_namespace_admits(
    demo_emulator, kubeconfig, run_kdebug, place_target
):
    ns = place_target("restricted", "nonroot")

    result = run_kdebug(
        "run", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "-o", "json", "--", "true"
    )

    assert result.code == 0, result.out + result.err
    item = json.loads(result.out)[0]
    toolbox = next(
        c for c in ephemeral_containers(demo_emulator, ns, "target") if c["name"] == item["debug_container"]
    )
    assert toolbox["securityContext"]["allowPrivilegeEscalation"] is False
    assert toolbox["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert toolbox["securityContext"]["runAsUser"] == 65532


@pytest.mark.parametrize("fresh", [pytest.param([], id="toolbox"), pytest.param(["--fresh"], id="fresh")])
def test_run_with_a_profile_the_namespace_refuses_fails_before_any_write(
    demo_emulator, kubeconfig, run_kdebug, place_target, fresh
):
    ns = place_target("restricted", "nonroot")
    before = len(demo_emulator.requests)

    result = run_kdebug(
        "run", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--profile", "sysadmin", *fresh,
        "-o", "json", "--", "true",
    )  # fmt: skip

    assert result.code == ExitCode.PERMISSION_DENIED  # every pod forbidden: 66 (docs/exit-codes.md)
    assert json.loads(result.out)[0]["error"]["kind"] == "forbidden"
    assert "violates namespace psa-restricted's Pod Security" in json.loads(result.out)[0]["error"]["message"]
    assert mutating_requests(demo_emulator, before) == []


SERVER_DEFAULTS = ("imagePullPolicy", "resources", "terminationMessagePath")  # filled in by the API server


def without_per_run_parts(container: dict) -> dict:
    """The container minus what differs on every run: its name, the session id and its owner (inspect
    plans for no particular user)."""
    env = [e for e in container.get("env") or [] if e["name"] not in ("KDEBUG_SESSION_ID", "KDEBUG_USER")]
    return {**{k: v for k, v in container.items() if k != "name"}, "env": env}


def as_sent(stored: dict) -> dict:
    """The stored container without the fields the server defaulted (the emulator logs no bodies)."""
    return {k: v for k, v in stored.items() if k not in SERVER_DEFAULTS}


@pytest.mark.parametrize(
    ("level", "user", "flags"),
    [
        pytest.param("restricted", "nonroot", [], id="restricted nonroot target"),
        pytest.param("privileged", "root", [], id="privileged root target"),
        pytest.param(
            "restricted",
            "nonroot",
            ["--image", "gcr.io/distroless/base-debian12:debug-nonroot"],
            id="--image on a nonroot target",
        ),
    ],
)
def test_inspect_spec_is_what_attach_sends(
    demo_emulator, kubeconfig, run_kdebug, place_target, tmp_path, level, user, flags
):
    ns = place_target(level, user)
    inspected = run_kdebug(
        "inspect", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--spec", "-o", "json", *flags
    )
    assert inspected.code == 0, inspected.err
    planned = json.loads(inspected.out)["spec"]

    env = {**console_env(tmp_path, kubeconfig), "TERM": "xterm"}
    child = pexpect.spawn(
        KDEBUG,
        ["attach", "target", "-n", ns, *flags],
        env=env,
        dimensions=(24, 80),
        timeout=20,
        encoding="utf-8",
    )
    try:
        demo_emulator.wait_for(lambda: ephemeral_containers(demo_emulator, ns, "target"), timeout=20)
    finally:
        child.terminate(force=True)
    sent = ephemeral_containers(demo_emulator, ns, "target")[0]

    assert without_per_run_parts(planned) == without_per_run_parts(as_sent(sent))


def test_attach_with_a_profile_the_namespace_refuses_fails_before_any_write(
    demo_emulator, kubeconfig, run_kdebug, place_target
):
    ns = place_target("restricted", "nonroot")
    before = len(demo_emulator.requests)

    result = run_kdebug(
        "attach", "target", "-n", ns, "--kubeconfig", str(kubeconfig), "--profile", "sysadmin", "--", "true"
    )

    assert result.code == ExitCode.PERMISSION_DENIED
    assert mutating_requests(demo_emulator, before) == []
