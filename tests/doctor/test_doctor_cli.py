"""`kdebug doctor` through the real entry point against the emulator: each check passes in one case and
fails (or warns, where a problem does not block attach) in another."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from kdebug.cli.main import main
from kdebug.debug import spec
from kdebug.debug.copy_pods import create_copy
from kdebug.errors import ExitCode
from tests.fixtures.cluster import BUSYBOX, CRASHING_COMMAND, mutating_requests

ATTACHER = [
    {"verbs": ["get", "list"], "resources": ["pods"]},
    {"verbs": ["patch"], "resources": ["pods/ephemeralcontainers"]},
    {"verbs": ["get", "create"], "resources": ["pods/attach"]},
]


@pytest.fixture(autouse=True)
def empty_config(tmp_path, monkeypatch):
    monkeypatch.delenv("KDEBUG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))  # no config file: defaults
    monkeypatch.delenv("KUBECONFIG", raising=False)


@pytest.fixture
def doctor(capfd):
    """Run `kdebug doctor ARGS -o json`; returns (exit code, {check name: check})."""

    def run(*args: str) -> tuple[int, dict]:
        code = main(["doctor", *args, "-o", "json"])
        document = json.loads(capfd.readouterr().out)
        return code, {c["name"]: c for c in document["checks"]}

    return run


def status_of(checks: dict, name: str) -> str:
    return checks[name]["status"]


def kubeconfig_args(cluster, user: str = "admin", namespace: str = "default") -> list[str]:
    return ["--kubeconfig", str(cluster.kubeconfig(user, namespace))]


# --- cluster checks ---


def test_healthy_cluster_passes_every_check(cluster, doctor):
    code, checks = doctor(*kubeconfig_args(cluster))

    assert code == 0
    assert {name: c["status"] for name, c in checks.items()} == {
        "kubeconfig": "pass",
        "server": "pass",
        "ephemeral-containers": "pass",
        "identity": "pass",
        "permissions": "pass",
        "pod-security": "pass",
        "leftover-copies": "pass",
    }


def test_missing_kubeconfig_fails(doctor, tmp_path):
    code, checks = doctor("--kubeconfig", str(tmp_path / "missing"))

    assert code == ExitCode.CHECK_FAILED
    assert status_of(checks, "kubeconfig") == "fail"
    assert "does not exist" in checks["kubeconfig"]["message"]


def test_unknown_context_fails(cluster, doctor):
    code, checks = doctor(*kubeconfig_args(cluster), "--context", "nope")

    assert status_of(checks, "kubeconfig") == "fail"
    assert code == ExitCode.CHECK_FAILED
    assert "nope" in checks["kubeconfig"]["message"]


def test_unreachable_server_fails(cluster, doctor):
    args = kubeconfig_args(cluster)
    cluster.emu.stop()

    code, checks = doctor(*args)

    assert code == ExitCode.CHECK_FAILED
    assert (status_of(checks, "kubeconfig"), status_of(checks, "server")) == ("pass", "fail")
    assert "connection refused" in checks["server"]["message"]


@pytest.mark.parametrize(
    ("minor", "status"),
    [
        pytest.param("22", "fail", id="1.22 has no ephemeral containers"),
        pytest.param("24", "warn", id="1.24 has them behind a feature gate"),
    ],
)
def test_old_servers_lack_ephemeral_containers(cluster, doctor, monkeypatch, minor, status):
    from kdebug_emulator import discovery

    monkeypatch.setitem(discovery.SERVER_VERSION, "minor", minor)
    monkeypatch.setitem(discovery.SERVER_VERSION, "gitVersion", f"v1.{minor}.0")

    _, checks = doctor(*kubeconfig_args(cluster))

    assert status_of(checks, "ephemeral-containers") == status
    assert checks["server"]["message"] == f"API server reachable, v1.{minor}.0"


def test_anonymous_user_has_no_identity(cluster, doctor, tmp_path):
    config = yaml.safe_load(cluster.kubeconfig().read_text())
    for user in config["users"]:
        user["user"].pop("token", None)
    path = tmp_path / "anonymous"
    path.write_text(yaml.safe_dump(config))

    _, checks = doctor("--kubeconfig", str(path))

    assert status_of(checks, "identity") == "warn"


def test_identity_names_the_user(cluster, doctor):
    cluster.emu.add_user("carol", groups=["oncall"], rules=ATTACHER)

    _, checks = doctor(*kubeconfig_args(cluster, "carol"))

    assert checks["identity"]["message"] == "you are carol (groups: oncall, system:authenticated)"


def test_user_with_the_attach_permissions_passes(cluster, doctor):
    cluster.emu.add_user("carol", rules=ATTACHER)

    _, checks = doctor(*kubeconfig_args(cluster, "carol"))

    assert status_of(checks, "permissions") == "pass"


def test_missing_permissions_fail_with_the_exact_verbs(cluster, doctor):
    cluster.emu.add_user("bob", rules=[{"verbs": ["get", "list"], "resources": ["pods"]}])

    code, checks = doctor(*kubeconfig_args(cluster, "bob"))

    assert code == ExitCode.CHECK_FAILED
    assert checks["permissions"]["message"] == (
        'user "bob" may not patch pods/ephemeralcontainers, create pods/attach, get pods/attach '
        'in namespace "default"'
    )
    assert "--rbac" in checks["permissions"]["fix"]


def test_unanswered_access_reviews_only_warn(cluster, doctor):
    cluster.emu.access_reviews_enabled = False

    code, checks = doctor(*kubeconfig_args(cluster))

    assert code == 0
    assert status_of(checks, "permissions") == "warn"


def test_pod_security_levels_are_listed(cluster, doctor):
    cluster.namespace("team", "baseline", **{"pod-security.kubernetes.io/warn": "restricted"})

    _, checks = doctor(*kubeconfig_args(cluster), "-n", "team")

    assert status_of(checks, "pod-security") == "pass"
    assert "enforce=baseline" in checks["pod-security"]["message"]
    assert "warn=restricted" in checks["pod-security"]["message"]


def test_unreadable_namespace_warns(cluster, doctor):
    cluster.emu.add_user("carol", rules=ATTACHER)

    _, checks = doctor(*kubeconfig_args(cluster, "carol"))

    assert status_of(checks, "pod-security") == "warn"


# --- target checks ---


def test_running_target_passes_every_check(cluster, doctor):
    cluster.pod("default", "web")

    code, checks = doctor(*kubeconfig_args(cluster), "web")

    assert code == 0
    assert [name for name, c in checks.items() if c["status"] != "pass"] == []
    assert {
        "target-state",
        "pod-security-admission",
        "node-platform",
        "target-user",
        "kdebug-debuggers",
        "debug-image",
    } <= set(checks)


def test_missing_target_fails(cluster, doctor):
    code, checks = doctor(*kubeconfig_args(cluster), "nope")

    assert code == ExitCode.CHECK_FAILED
    assert status_of(checks, "target") == "fail"
    assert "nope" in checks["target"]["message"]


def test_crash_looping_target_fails_and_suggests_a_copy(cluster, doctor):
    cluster.pod("default", "shop", image=BUSYBOX, command=CRASHING_COMMAND, wait=False)
    cluster.wait_container("default", "shop", "app", "waiting", reason="CrashLoopBackOff")

    code, checks = doctor(*kubeconfig_args(cluster), "shop")

    assert code == ExitCode.CHECK_FAILED
    assert status_of(checks, "target-state") == "fail"
    assert "--copy" in checks["target-state"]["fix"]


def add_ephemeral(cluster, namespace: str, pod: str, name: str, security_context: dict | None = None) -> None:
    container = spec.build_ephemeral_container(
        name=name, image=BUSYBOX, command=["sh"], target="app", session_id="s0", stdin=True, tty=True
    )
    if security_context:
        container["securityContext"] = security_context
    cluster.client().patch(
        f"/api/v1/namespaces/{namespace}/pods/{pod}/ephemeralcontainers",
        spec.ephemeral_patch(container),
        spec.PATCH_CONTENT_TYPE,
    )


def test_earlier_privileged_debugger_in_a_baseline_namespace_fails(cluster, doctor):
    cluster.namespace("team")
    cluster.pod("team", "web")
    add_ephemeral(cluster, "team", "web", "debugger-old", {"privileged": True})
    cluster.namespace("team", "baseline")

    code, checks = doctor(*kubeconfig_args(cluster), "-n", "team", "web")

    assert code == ExitCode.CHECK_FAILED
    assert status_of(checks, "pod-security-admission") == "fail"
    assert "debugger-old" in checks["pod-security-admission"]["message"]
    assert checks["pod-security-admission"]["fix"] == "use --copy"


def test_windows_node_fails(cluster, doctor):
    cluster.emu.apply(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "win-1",
                "labels": {"kubernetes.io/os": "windows", "kubernetes.io/arch": "amd64"},
            },
        }
    )
    cluster.pod("default", "web", nodeName="win-1", wait=False)

    _, checks = doctor(*kubeconfig_args(cluster), "web")

    assert status_of(checks, "node-platform") == "fail"


def test_node_platform_is_reported(cluster, doctor):
    cluster.pod("default", "web")

    _, checks = doctor(*kubeconfig_args(cluster), "web")

    assert checks["node-platform"]["message"].startswith("node is linux/")


def test_root_target_in_a_restricted_namespace_warns_its_files_are_unreadable(cluster, doctor):
    cluster.namespace("team", "restricted")
    # runAsNonRoot, but the image runs as root (its name says so: distroless :latest)
    cluster.pod("team", "web", restricted=True, image="gcr.io/distroless/static-debian12:latest")

    _, checks = doctor(*kubeconfig_args(cluster), "-n", "team", "web")

    assert status_of(checks, "target-user") == "warn"
    assert "NOT be readable" in checks["target-user"]["message"]


def test_non_root_target_in_a_restricted_namespace_is_readable(cluster, doctor):
    cluster.namespace("team", "restricted")
    cluster.pod("team", "api", nonroot=True, restricted=True)

    _, checks = doctor(*kubeconfig_args(cluster), "-n", "team", "api")

    assert status_of(checks, "target-user") == "pass"
    assert "65532:65532" in checks["target-user"]["message"]


def test_running_kdebug_debugger_warns(cluster, doctor):
    cluster.pod("default", "web")
    add_ephemeral(cluster, "default", "web", "kdebug-abcde")
    cluster.wait_container("default", "web", "kdebug-abcde", "running", field="ephemeralContainerStatuses")

    _, checks = doctor(*kubeconfig_args(cluster), "web")

    assert status_of(checks, "kdebug-debuggers") == "warn"
    assert "kdebug-abcde" in checks["kdebug-debuggers"]["message"]


def test_debug_image_is_named(cluster, doctor):
    cluster.pod("default", "web")

    _, checks = doctor(*kubeconfig_args(cluster), "web")

    assert "busybox" in checks["debug-image"]["message"]


def test_debug_image_refused_by_the_allowlist_fails(cluster, doctor, tmp_path, monkeypatch):
    config = tmp_path / "config.yaml"
    config.write_text('allowed_images: ["registry.corp/*"]\n')
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))
    cluster.pod("default", "web")

    code, checks = doctor(*kubeconfig_args(cluster), "web")

    assert code == ExitCode.CHECK_FAILED
    assert status_of(checks, "debug-image") == "fail"


def test_old_copy_is_a_leftover(cluster, doctor):
    pod = cluster.pod("default", "web")
    debugger = spec.build_ephemeral_container(
        name="kdebug-dbg", image=BUSYBOX, command=["sh"], target="app", session_id="s1", stdin=True, tty=True
    )
    long_ago = datetime.now(UTC) - timedelta(days=2)
    create_copy(cluster.client(), pod, "app", debugger, session_id="s1", now=long_ago, suffix="old12")

    _, checks = doctor(*kubeconfig_args(cluster))

    assert status_of(checks, "leftover-copies") == "warn"
    assert "web-kdebug-old12" in checks["leftover-copies"]["message"]


# --- output, --rbac and read-only ---


def test_doctor_changes_nothing(cluster, doctor):
    cluster.pod("default", "web")
    before = len(cluster.emu.requests)

    doctor(*kubeconfig_args(cluster), "web")

    assert mutating_requests(cluster.emu, before) == []


def test_json_document_has_a_version_and_ok(cluster, capfd):
    code = main(["doctor", *kubeconfig_args(cluster), "-o", "json"])
    document = json.loads(capfd.readouterr().out)

    assert (code, document["version"], document["ok"]) == (0, 1, True)


def test_table_lists_each_check_with_its_fix(cluster, capfd):
    cluster.emu.add_user("bob", rules=[{"verbs": ["get"], "resources": ["pods"]}])

    code = main(["doctor", *kubeconfig_args(cluster, "bob")])
    out = capfd.readouterr().out

    assert code == ExitCode.CHECK_FAILED
    assert "FAIL  permissions" in out
    assert "fix: kdebug doctor --rbac prints a Role granting it" in out


def test_unknown_output_is_a_usage_error(capfd):
    assert main(["doctor", "-o", "yaml"]) == ExitCode.USAGE
    assert "unknown output 'yaml'" in capfd.readouterr().err


def rbac_documents(capfd, *args: str) -> list[dict]:
    code = main(["doctor", *args, "--rbac"])
    assert code == 0
    return list(yaml.safe_load_all(capfd.readouterr().out))


def test_rbac_grants_exactly_what_is_missing(cluster, capfd):
    cluster.emu.add_user("bob", rules=[{"verbs": ["get"], "resources": ["pods"]}])

    role, binding = rbac_documents(capfd, *kubeconfig_args(cluster, "bob", "team"))

    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "team"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["create", "get"]},
    ]
    assert binding["subjects"][0]["name"] == "bob"


def test_rbac_grants_everything_attach_needs_when_nothing_is_missing(cluster, capfd):
    role, _ = rbac_documents(capfd, *kubeconfig_args(cluster))

    assert [r["resources"] for r in role["rules"]] == [
        ["pods"],
        ["pods/ephemeralcontainers"],
        ["pods/attach"],
    ]


def test_rbac_role_lets_the_user_attach(cluster, capfd):
    """The printed rules, given to the user, make the preflight pass."""
    from kdebug.security.preflight import run_preflight

    cluster.emu.add_user("bob", rules=[{"verbs": ["get"], "resources": ["pods"]}])
    role, _ = rbac_documents(capfd, *kubeconfig_args(cluster, "bob"))
    granted = [
        {"verbs": r["verbs"], "resources": r["resources"], "apiGroups": r["apiGroups"]} for r in role["rules"]
    ]
    cluster.emu.set_rules("bob", [{"verbs": ["get"], "resources": ["pods"]}, *granted])

    assert run_preflight(cluster.client("bob"), "default", "attach").state == "allowed"


def test_doctor_help_has_examples(capfd):
    assert main(["doctor", "--help"]) == 0
    out = capfd.readouterr().out
    assert "kdebug doctor web -n demo" in out and "--rbac" in out


def test_doctor_is_read_only_even_without_a_cluster(tmp_path: Path, capfd):
    assert main(["doctor", "--kubeconfig", str(tmp_path / "missing")]) == ExitCode.CHECK_FAILED
    assert "FAIL  kubeconfig" in capfd.readouterr().out
