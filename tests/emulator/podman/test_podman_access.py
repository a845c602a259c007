"""What a debug container really sees of its target: /proc/1/root by uid/gid and capability, and the
effect of each kdebug profile inside the container (`/proc/self/status`, `id`)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kdebug.security.profiles import apply_profile
from tests.emulator.podman.harness import Harness, is_running, make_pod, run_debugger

pytestmark = pytest.mark.podman

BUSYBOX = "docker.io/library/busybox:1.36.1"
WEB = "registry.kdebug.test/demo/web:1.0"
NONROOT_APP = "gcr.io/distroless/base-debian12:nonroot"
CAPS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7,
        "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_CHROOT": 18,
        "SYS_PTRACE": 19, "SYS_ADMIN": 21, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}  # fmt: skip


@pytest.fixture(scope="module")
def nonroot_target(harness: Harness) -> dict[str, Any]:
    """A distroless-like app running as 65532:65532, as the demo's api pod."""
    # runAsNonRoot on the app container only: at pod level it would bind the root debuggers too
    app = {"name": "app", "image": NONROOT_APP, "securityContext": {"runAsNonRoot": True}}
    pod = make_pod([app], security_context={"runAsUser": 65532, "runAsGroup": 65532})
    harness.start_pod(pod)
    harness.recorder.wait_for(pod["metadata"]["name"], "app", is_running)
    return pod


@pytest.fixture(scope="module")
def root_target(harness: Harness) -> dict[str, Any]:
    """The demo's web pod: a scratch app, no security context, so debuggers run as the image says."""
    pod = harness.start_pod(make_pod([{"name": "app", "image": WEB}]))
    harness.recorder.wait_for(pod["metadata"]["name"], "app", is_running)
    return pod


def debugger(command: list[str], security_context: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "debugger-" + uuid.uuid4().hex[:5],
        "image": BUSYBOX,
        "command": command,
        "targetContainerName": "app",
    }
    if security_context is not None:
        container["securityContext"] = security_context
    return container


def test_added_capability_is_not_effective_for_a_non_root_user(
    harness: Harness, nonroot_target: dict[str, Any]
) -> None:
    context = {"runAsUser": 65532, "runAsGroup": 0, "capabilities": {"add": ["SYS_PTRACE"]}}
    exit_code, _ = run_debugger(harness, nonroot_target, debugger(["ls", "/proc/1/root/etc"], context))
    assert exit_code != 0


@pytest.mark.parametrize(
    "security_context, allowed",
    [
        ({"runAsUser": 0}, False),
        ({"runAsUser": 0, "capabilities": {"add": ["SYS_PTRACE"]}}, True),
        ({"runAsUser": 65532, "runAsGroup": 65532}, True),
        ({"runAsUser": 65532, "runAsGroup": 0}, False),
    ],
    ids=["root-without-ptrace-denied", "root-with-ptrace-allowed", "65532:65532-allowed", "65532:0-denied"],
)
def test_target_root_filesystem_access(
    harness: Harness, nonroot_target: dict[str, Any], security_context: dict[str, Any], allowed: bool
) -> None:
    exit_code, output = run_debugger(
        harness, nonroot_target, debugger(["ls", "/proc/1/root/etc"], security_context)
    )
    assert (exit_code == 0, "os-release" in output) == (allowed, allowed)


def test_debugger_sees_the_target_process_as_pid_1(harness: Harness, nonroot_target: dict[str, Any]) -> None:
    _, output = run_debugger(harness, nonroot_target, debugger(["ps", "-o", "pid,user,args"]))
    first = output.splitlines()[1].split()
    assert first == ["1", "65532", "/app", "-P"]


def test_target_os_release_reads_distroless(harness: Harness, nonroot_target: dict[str, Any]) -> None:
    context = {"runAsUser": 65532, "runAsGroup": 65532}
    _, output = run_debugger(
        harness, nonroot_target, debugger(["cat", "/proc/1/root/etc/os-release"], context)
    )
    assert 'PRETTY_NAME="Distroless"' in output


def status_fields(output: str) -> dict[str, str]:
    fields = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith("uid="):
            fields[key.strip()] = value.strip()
        elif line.startswith("uid="):
            fields["id"] = line.strip()
    return fields


def caps_of(mask: str) -> set[str]:
    value = int(mask, 16)
    return {name for name, bit in CAPS.items() if value >> bit & 1}


PROBE = ["sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; id"]
DEFAULT = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
           "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"}  # fmt: skip


@pytest.mark.parametrize(
    "profile, user, expected",
    [
        ("general", None, {"CapEff": DEFAULT | {"SYS_PTRACE"}, "NoNewPrivs": "0", "uid": "uid=0(root)"}),
        ("baseline", None, {"CapEff": DEFAULT, "NoNewPrivs": "0", "uid": "uid=0(root)"}),
        ("netadmin", None, {"CapEff": DEFAULT | {"NET_ADMIN"}, "NoNewPrivs": "0", "uid": "uid=0(root)"}),
        ("sysadmin", None, {"CapEff": set(CAPS), "NoNewPrivs": "0", "uid": "uid=0(root)"}),
        (
            "restricted",
            65532,
            {"CapEff": set(), "NoNewPrivs": "1", "uid": "uid=65532(65532) gid=65532(65532)"},
        ),
    ],
    ids=["general", "baseline", "netadmin", "sysadmin", "restricted-as-65532"],
)
def test_profile_effect_inside_the_container(
    harness: Harness, root_target: dict[str, Any], profile: str, user: int | None, expected: dict[str, Any]
) -> None:
    container = apply_profile(debugger(PROBE), profile, run_as_user=user, run_as_group=user)
    exit_code, output = run_debugger(harness, root_target, container)
    fields = status_fields(output)
    seen = {
        "CapEff": caps_of(fields["CapEff"]),
        "NoNewPrivs": fields["NoNewPrivs"],
        "uid": " ".join(fields["id"].split()[:2]) if user else fields["id"].split()[0],
    }
    assert (exit_code, seen) == (0, expected)


def test_restricted_profile_has_runtime_default_seccomp(
    harness: Harness, root_target: dict[str, Any]
) -> None:
    container = apply_profile(debugger(PROBE), "restricted", run_as_user=65532, run_as_group=65532)
    _, output = run_debugger(harness, root_target, container)
    assert status_fields(output)["Seccomp"] == "2"  # filter mode


def test_unset_seccomp_is_unconfined(harness: Harness, root_target: dict[str, Any]) -> None:
    _, output = run_debugger(harness, root_target, debugger(PROBE))
    assert status_fields(output)["Seccomp"] == "0"


def test_restricted_profile_without_user_refuses_the_root_busybox(
    harness: Harness, root_target: dict[str, Any]
) -> None:
    container = apply_profile(debugger(PROBE), "restricted")
    harness.add_ephemeral(root_target, container)
    name = root_target["metadata"]["name"]
    state = harness.recorder.wait_for(
        name, container["name"], lambda s: s.get("waiting", {}).get("reason") == "CreateContainerConfigError"
    )
    assert state["waiting"]["message"].startswith("container has runAsNonRoot and image will run as root")
