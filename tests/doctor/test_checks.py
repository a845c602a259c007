"""Each `kdebug doctor` check with a passing and a failing (or warning) case."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta

import pytest

from kdebug.debug.copy_spec import build_copy_pod
from kdebug.doctor.checks import (
    Check,
    Status,
    check_debug_image,
    check_earlier_debuggers,
    check_ephemeral_containers,
    check_identity,
    check_kdebug_debuggers,
    check_kubeconfig,
    check_leftover_copies,
    check_node_platform,
    check_permissions,
    check_pod_security,
    check_server,
    check_target_state,
    check_target_user,
    checks_json,
    overall_exit,
    run_checks,
    server_minor_version,
)
from kdebug.errors import ExitCode
from tests.fixtures.pods import build_pod, container, container_status, waiting

needs_podsecurity = pytest.mark.skipif(
    importlib.util.find_spec("kdebug.security.podsecurity") is None,
    reason="kdebug.security.podsecurity (another engineer's module) is not in the tree yet",
)

NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
PRIVILEGED_DEBUGGER = {"name": "kdebug-old", "image": "busybox", "securityContext": {"privileged": True}}


def make_pod(
    *,
    phase: str = "Running",
    state: dict | None = None,
    ephemeral: list[dict] | None = None,
    ephemeral_states: dict[str, dict] | None = None,
    annotations: dict | None = None,
    spec_extra: dict | None = None,
) -> dict:
    return build_pod(
        typed=False,
        name="shop",
        namespace="lab",
        annotations=annotations or {},
        containers=[container("app", "gcr.io/distroless/static-debian12:nonroot")],
        ephemeral_containers=ephemeral or [],
        spec_extra=spec_extra,
        phase=phase,
        container_statuses=[container_status("app", state)],
        ephemeral_container_statuses=[container_status(n, s) for n, s in (ephemeral_states or {}).items()],
    )


def make_target(pod: dict | None = None, **extra) -> dict:
    target = {
        "pod": pod or make_pod(),
        "container": "app",
        "image_user": "65532",
        "node_labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
        "debug_image": "docker.io/library/busybox:1.36.1",
        "debug_image_reason": "distroless static: BusyBox",
    }
    target.update(extra)
    return target


def allowed(value: bool) -> dict:
    return {"status": {"allowed": value}}


def status_of(check: Check) -> str:
    return str(check.status)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            {"kubeconfig": {"path": "/home/a/.kube/config", "context": "lab"}}, "pass", id="context set"
        ),
        pytest.param({"kubeconfig": {"path": "/x", "context": None}}, "fail", id="no context"),
        pytest.param({"kubeconfig": {"error": "invalid YAML at line 3"}}, "fail", id="broken file"),
    ],
)
def test_check_kubeconfig(facts: dict, expected: str) -> None:
    assert status_of(check_kubeconfig(facts)) == expected


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        pytest.param({"reachable": True, "version": {"gitVersion": "v1.32.4"}}, "pass", id="reachable"),
        pytest.param({"reachable": False, "error": "connection refused"}, "fail", id="unreachable"),
    ],
)
def test_check_server(server: dict, expected: str) -> None:
    assert status_of(check_server({"server": server})) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param({"major": "1", "minor": "32", "gitVersion": "v1.32.4"}, "pass", id="1.32 GA"),
        pytest.param({"major": "1", "minor": "25"}, "pass", id="1.25 GA"),
        pytest.param({"major": "1", "minor": "24+"}, "warn", id="1.24 beta with a plus"),
        pytest.param({"gitVersion": "v1.23.17-eks-1"}, "warn", id="1.23 beta from gitVersion"),
        pytest.param({"major": "1", "minor": "22"}, "fail", id="1.22 use copies"),
        pytest.param(None, "warn", id="unknown"),
    ],
)
def test_check_ephemeral_containers(version: dict | None, expected: str) -> None:
    check = check_ephemeral_containers({"server": {"reachable": True, "version": version}})
    assert status_of(check) == expected


def test_old_server_fix_suggests_copy() -> None:
    check = check_ephemeral_containers({"server": {"version": {"major": "1", "minor": "21"}}})
    assert check.fix == "use --copy" and "GA since 1.25" in check.message


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param({"major": "1", "minor": "27+"}, (1, 27), id="gke style"),
        pytest.param({"gitVersion": "v1.30.2+k3s1"}, (1, 30), id="git version only"),
        pytest.param({"gitVersion": "nonsense"}, None, id="unparseable"),
    ],
)
def test_server_minor_version(version: dict, expected: tuple[int, int] | None) -> None:
    assert server_minor_version(version) == expected


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        pytest.param({"username": "alice", "groups": ["system:authenticated"]}, "pass", id="known"),
        pytest.param(None, "warn", id="not answered"),
    ],
)
def test_check_identity(identity: dict | None, expected: str) -> None:
    assert status_of(check_identity({"identity": identity})) == expected


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        pytest.param([allowed(True)] * 4, "pass", id="all allowed"),
        pytest.param(
            [allowed(True), allowed(False), allowed(True), allowed(True)], "fail", id="patch denied"
        ),
        pytest.param([None] * 4, "warn", id="no answers"),
    ],
)
def test_check_permissions(answers: list, expected: str) -> None:
    check = check_permissions({"namespace": "lab", "operation": "attach", "access_answers": answers})
    assert status_of(check) == expected


def test_permission_failure_names_the_missing_verb() -> None:
    answers = [allowed(True), allowed(False), allowed(True), allowed(True)]
    facts = {"namespace": "lab", "access_answers": answers, "identity": {"username": "alice"}}
    check = check_permissions(facts)
    assert check.message == 'user "alice" may not patch pods/ephemeralcontainers in namespace "lab"'
    assert "--rbac" in check.fix


@needs_podsecurity
@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"pod-security.kubernetes.io/enforce": "baseline"}, "pass", id="labels read"),
        pytest.param(None, "warn", id="namespace unreadable"),
    ],
)
def test_check_pod_security(labels: dict | None, expected: str) -> None:
    assert status_of(check_pod_security({"namespace": "lab", "namespace_labels": labels})) == expected


@needs_podsecurity
def test_pod_security_summary_names_the_levels() -> None:
    check = check_pod_security(
        {"namespace": "lab", "namespace_labels": {"pod-security.kubernetes.io/enforce": "baseline"}}
    )
    assert "enforce=baseline" in check.message


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(make_pod(), "pass", id="running"),
        pytest.param(make_pod(state=waiting("CrashLoopBackOff")), "fail", id="crash looping"),
        pytest.param(
            make_pod(phase="Succeeded", state={"terminated": {"reason": "Completed"}}), "fail", id="completed"
        ),
        pytest.param(
            make_pod(phase="Pending", state=waiting("ContainerCreating")),
            "fail",
            id="pending",
        ),
        pytest.param(make_pod(annotations={"kubernetes.io/config.mirror": "abc"}), "fail", id="static pod"),
    ],
)
def test_check_target_state(pod: dict, expected: str) -> None:
    assert status_of(check_target_state(make_target(pod))) == expected


def test_crash_loop_suggests_a_copy_with_sleep() -> None:
    check = check_target_state(make_target(make_pod(state=waiting("CrashLoopBackOff"))))
    assert "CrashLoopBackOff" in check.message and "--copy-command 'sleep infinity'" in check.fix


@needs_podsecurity
@pytest.mark.parametrize(
    ("pod", "level", "expected"),
    [
        pytest.param(make_pod(), "baseline", "pass", id="clean pod in baseline"),
        pytest.param(
            make_pod(ephemeral=[PRIVILEGED_DEBUGGER]),
            "privileged",
            "pass",
            id="old privileged, privileged ns",
        ),
        pytest.param(
            make_pod(ephemeral=[PRIVILEGED_DEBUGGER]), "baseline", "fail", id="old privileged, baseline ns"
        ),
        pytest.param(make_pod(spec_extra={"hostPID": True}), "baseline", "fail", id="pod itself violates"),
    ],
)
def test_check_earlier_debuggers(pod: dict, level: str, expected: str) -> None:
    labels = {"pod-security.kubernetes.io/enforce": level}
    assert status_of(check_earlier_debuggers(make_target(pod), labels)) == expected


@needs_podsecurity
def test_old_privileged_debugger_is_named_and_copy_suggested() -> None:
    pod = make_pod(ephemeral=[{"name": "kdebug-fine", "image": "busybox"}, PRIVILEGED_DEBUGGER])
    check = check_earlier_debuggers(make_target(pod), {"pod-security.kubernetes.io/enforce": "baseline"})
    assert "kdebug-old" in check.message and "kdebug-fine" not in check.message and check.fix == "use --copy"


def test_earlier_debuggers_unknown_without_namespace() -> None:
    assert status_of(check_earlier_debuggers(make_target(), None)) == "warn"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(make_target(), "pass", id="linux from node labels"),
        pytest.param(
            make_target(node_labels=None, pod=make_pod(spec_extra={"os": {"name": "linux"}})),
            "pass",
            id="linux from pod spec.os",
        ),
        pytest.param(make_target(node_labels={"kubernetes.io/os": "windows"}), "fail", id="windows"),
        pytest.param(make_target(node_labels=None), "warn", id="unknown"),
    ],
)
def test_check_node_platform(target: dict, expected: str) -> None:
    assert status_of(check_node_platform(target)) == expected


@needs_podsecurity
@pytest.mark.parametrize(
    ("image_user", "level", "expected"),
    [
        pytest.param("65532", "restricted", "pass", id="nonroot target, restricted: same ids"),
        pytest.param("", "privileged", "pass", id="root target, privileged: SYS_PTRACE"),
        pytest.param("", "restricted", "warn", id="root target, restricted: unreadable"),
        pytest.param(None, "baseline", "warn", id="unknown user"),
    ],
)
def test_check_target_user(image_user: str | None, level: str, expected: str) -> None:
    target = make_target(image_user=image_user)
    assert status_of(check_target_user(target, {"pod-security.kubernetes.io/enforce": level})) == expected


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(make_pod(), "pass", id="none"),
        pytest.param(
            make_pod(
                ephemeral=[{"name": "kdebug-abcde"}], ephemeral_states={"kdebug-abcde": {"terminated": {}}}
            ),
            "pass",
            id="exited",
        ),
        pytest.param(
            make_pod(
                ephemeral=[{"name": "kdebug-abcde"}], ephemeral_states={"kdebug-abcde": {"running": {}}}
            ),
            "warn",
            id="still running",
        ),
        pytest.param(
            make_pod(ephemeral=[{"name": "debugger-x"}], ephemeral_states={"debugger-x": {"running": {}}}),
            "pass",
            id="kubectl's own debugger is not ours",
        ),
    ],
)
def test_check_kdebug_debuggers(pod: dict, expected: str) -> None:
    assert status_of(check_kdebug_debuggers(make_target(pod))) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(make_target(), "pass", id="chosen"),
        pytest.param(make_target(debug_image=None), "fail", id="none"),
    ],
)
def test_check_debug_image(target: dict, expected: str) -> None:
    assert status_of(check_debug_image(target)) == expected


def kdebug_copy(age: timedelta) -> dict:
    pod = {"metadata": {"name": "shop", "namespace": "lab"}, "spec": {"containers": [{"name": "app"}]}}
    return build_copy_pod(pod, "app", {"name": "kdebug-x", "image": "busybox"}, "abcde", "s-1", NOW - age)


@pytest.mark.parametrize(
    ("copies", "expected"),
    [
        pytest.param([kdebug_copy(timedelta(minutes=5))], "pass", id="young copy"),
        pytest.param([kdebug_copy(timedelta(hours=5))], "warn", id="old copy left over"),
    ],
)
def test_check_leftover_copies(copies: list[dict], expected: str) -> None:
    assert status_of(check_leftover_copies({"copies": copies, "now": NOW})) == expected


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param([Status.PASS, Status.WARN], ExitCode.OK, id="warnings pass"),
        pytest.param([Status.PASS, Status.FAIL], ExitCode.CHECK_FAILED, id="a failure fails"),
        pytest.param([], ExitCode.OK, id="nothing checked"),
    ],
)
def test_overall_exit(statuses: list[Status], expected: ExitCode) -> None:
    checks = [Check(f"c{i}", s, "m") for i, s in enumerate(statuses)]
    assert overall_exit(checks) == expected


def test_json_rendering() -> None:
    checks = [Check("server", Status.PASS, "ok"), Check("permissions", Status.FAIL, "denied", "fix it")]
    document = json.loads(json.dumps(checks_json(checks)))
    assert document == {
        "version": 1,
        "ok": False,
        "checks": [
            {"name": "server", "status": "pass", "message": "ok", "fix": ""},
            {"name": "permissions", "status": "fail", "message": "denied", "fix": "fix it"},
        ],
    }


def test_run_checks_without_target_leaves_target_checks_out() -> None:
    facts = {
        "kubeconfig": {"path": "/x", "context": "lab"},
        "server": {"reachable": True, "version": {"major": "1", "minor": "32"}},
        "identity": {"username": "alice"},
        "namespace": "lab",
        "access_answers": [allowed(True)] * 4,
    }
    names = [c.name for c in run_checks(facts)]
    assert names == ["kubeconfig", "server", "ephemeral-containers", "identity", "permissions"]


@needs_podsecurity
def test_run_checks_with_target_runs_every_check() -> None:
    facts = {
        "kubeconfig": {"path": "/x", "context": "lab"},
        "server": {"reachable": True, "version": {"major": "1", "minor": "32"}},
        "identity": {"username": "alice"},
        "namespace": "lab",
        "access_answers": [allowed(True)] * 4,
        "namespace_labels": {"pod-security.kubernetes.io/enforce": "baseline"},
        "target": make_target(),
        "copies": [],
        "now": NOW,
    }
    checks = run_checks(facts)
    assert len(checks) == 13 and overall_exit(checks) == ExitCode.OK
