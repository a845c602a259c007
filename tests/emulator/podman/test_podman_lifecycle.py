"""Container lifecycle on real podman containers: states, exit codes, pulls, untouched neighbours."""

from __future__ import annotations

import json

import pytest

from tests.emulator.podman.harness import (
    Harness,
    exec_in,
    is_running,
    is_terminated,
    logs_of,
    make_pod,
    status_exit_code,
)

pytestmark = pytest.mark.podman

WEB = "registry.kdebug.test/demo/web:1.0"
BUSYBOX = "docker.io/library/busybox:1.36.1"


def test_app_container_reports_creating_then_running(harness: Harness) -> None:
    pod = harness.start_pod(make_pod([{"name": "app", "image": WEB}]))
    name = pod["metadata"]["name"]
    harness.recorder.wait_for(name, "app", is_running)
    reasons = [next(iter(s)) for s in harness.recorder.history(name, "app")]
    assert reasons[:2] == ["waiting", "running"]


def test_pod_has_only_loopback(harness: Harness) -> None:
    pod = harness.start_pod(make_pod([{"name": "sh", "image": BUSYBOX, "command": ["sleep", "600"]}]))
    harness.recorder.wait_for(pod["metadata"]["name"], "sh", is_running)
    output, status = exec_in(harness, pod, "sh", ["cat", "/proc/net/dev"])
    interfaces = {line.split(":")[0].strip() for line in output.splitlines() if ":" in line}
    assert (interfaces, status_exit_code(status)) == ({"lo"}, 0)


def test_container_exit_code_is_reported(harness: Harness) -> None:
    container = {"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "exit 3"]}
    pod = make_pod([container])
    pod["spec"]["restartPolicy"] = "Never"
    name = harness.start_pod(pod)["metadata"]["name"]
    state = harness.recorder.wait_for(name, "c", lambda s: "terminated" in s)
    assert (state["terminated"]["exitCode"], state["terminated"]["reason"]) == (3, "Error")


def test_ephemeral_container_exit_code_is_reported(harness: Harness) -> None:
    pod = harness.start_pod(make_pod([{"name": "app", "image": WEB}]))
    name = pod["metadata"]["name"]
    harness.recorder.wait_for(name, "app", is_running)
    debugger = {
        "name": "debugger-exit",
        "image": BUSYBOX,
        "command": ["sh", "-c", "exit 7"],
        "targetContainerName": "app",
    }
    harness.add_ephemeral(pod, debugger)
    state = harness.recorder.wait_for(name, "debugger-exit", lambda s: "terminated" in s)
    assert state["terminated"]["exitCode"] == 7


def test_missing_image_is_err_image_pull_then_backoff(harness: Harness) -> None:
    image = "gcr.io/distroless/does-not-exist:1.0"
    name = harness.start_pod(make_pod([{"name": "app", "image": image}]))["metadata"]["name"]
    harness.recorder.wait_for(name, "app", lambda s: s.get("waiting", {}).get("reason") == "ImagePullBackOff")
    reasons = [s["waiting"]["reason"] for s in harness.recorder.history(name, "app") if "waiting" in s]
    assert reasons[:3] == ["ContainerCreating", "ErrImagePull", "ImagePullBackOff"]


def test_missing_image_message_names_the_image(harness: Harness) -> None:
    image = "gcr.io/distroless/also-missing:2.0"
    name = harness.start_pod(make_pod([{"name": "app", "image": image}]))["metadata"]["name"]
    state = harness.recorder.wait_for(
        name, "app", lambda s: s.get("waiting", {}).get("reason") == "ErrImagePull"
    )
    assert state["waiting"]["message"].startswith(f'Failed to pull image "{image}": ')


def test_never_pull_policy_with_absent_image(harness: Harness) -> None:
    container = {"name": "app", "image": "gcr.io/distroless/never:1", "imagePullPolicy": "Never"}
    name = harness.start_pod(make_pod([container]))["metadata"]["name"]
    state = harness.recorder.wait_for(
        name, "app", lambda s: "waiting" in s and s["waiting"]["reason"] != "ContainerCreating"
    )
    assert state["waiting"] == {
        "reason": "ErrImageNeverPull",
        "message": 'Container image "gcr.io/distroless/never:1" is not present with pull policy of Never',
    }


def test_run_as_non_root_refuses_a_root_image(harness: Harness) -> None:
    container = {"name": "app", "image": BUSYBOX, "securityContext": {"runAsNonRoot": True}}
    pod = harness.start_pod(make_pod([container]))
    meta = pod["metadata"]
    state = harness.recorder.wait_for(
        meta["name"], "app", lambda s: "waiting" in s and s["waiting"]["reason"] != "ContainerCreating"
    )
    assert state["waiting"] == {
        "reason": "CreateContainerConfigError",
        "message": "container has runAsNonRoot and image will run as root "
        f'(pod: "{meta["name"]}_t({meta["uid"]})", container: app)',
    }


def podman_inspect(harness: Harness, name: str) -> tuple[str, str]:
    done = harness.runtime.setup.run_sync("container", "inspect", name)
    details = json.loads(done.stdout)[0]
    return details["Id"], details["State"]["StartedAt"]


def test_ephemeral_container_leaves_the_other_containers_untouched(harness: Harness) -> None:
    pod = harness.start_pod(
        make_pod(
            [{"name": "app", "image": WEB}, {"name": "side", "image": BUSYBOX, "command": ["sleep", "600"]}]
        )
    )
    name = pod["metadata"]["name"]
    for container in ("app", "side"):
        harness.recorder.wait_for(name, container, is_running)
    names = [harness.runtime.podman_name("t", name, c) for c in ("app", "side")]
    before = [podman_inspect(harness, n) for n in names]
    harness.add_ephemeral(
        pod, {"name": "debugger-x", "image": BUSYBOX, "command": ["true"], "targetContainerName": "app"}
    )
    harness.recorder.wait_for(name, "debugger-x", lambda s: "terminated" in s)
    assert [podman_inspect(harness, n) for n in names] == before


@pytest.mark.parametrize(
    "command, expected", [(["sh", "-c", "exit 4"], 4), (["true"], 0)], ids=["exit-4", "exit-0"]
)
def test_exec_reports_the_exit_code(harness: Harness, command: list[str], expected: int) -> None:
    pod = harness.start_pod(make_pod([{"name": "sh", "image": BUSYBOX, "command": ["sleep", "600"]}]))
    harness.recorder.wait_for(pod["metadata"]["name"], "sh", is_running)
    _, status = exec_in(harness, pod, "sh", command)
    assert status_exit_code(status) == expected


@pytest.mark.parametrize(
    "extra, script, expected",
    [
        ({"env": [{"name": "GREETING", "value": "hi there"}]}, "echo $GREETING", "hi there"),
        ({"workingDir": "/tmp"}, "pwd", "/tmp"),
        (
            {"securityContext": {"readOnlyRootFilesystem": True}},
            "touch /x 2>/dev/null || echo read-only",
            "read-only",
        ),
        ({"securityContext": {"runAsUser": 1234, "runAsGroup": 5678}}, "id -u; id -g", "1234\n5678"),
    ],
    ids=["env", "working-dir", "read-only-root", "run-as-user-and-group"],
)
def test_container_spec_reaches_the_container(
    harness: Harness, extra: dict[str, object], script: str, expected: str
) -> None:
    container = {"name": "c", "image": BUSYBOX, "command": ["sh", "-c", script], **extra}
    pod = make_pod([container])
    pod["spec"]["restartPolicy"] = "Never"
    harness.start_pod(pod)
    harness.recorder.wait_for(pod["metadata"]["name"], "c", is_terminated)
    assert logs_of(harness, pod, "c").strip() == expected


def test_restart_policy_always_restarts_with_a_count(harness: Harness) -> None:
    pod = harness.start_pod(make_pod([{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "exit 2"]}]))
    name = pod["metadata"]["name"]

    def restart_counts_of_exits() -> list[int]:
        states = harness.recorder.states
        return [extra["restart_count"] for _, p, _, s, extra in states if p == name and "terminated" in s]

    harness.recorder.wait_until(lambda: len(restart_counts_of_exits()) >= 2)
    harness.call(harness.runtime.stop_pod("t", name))
    assert restart_counts_of_exits()[:2] == [0, 1]
