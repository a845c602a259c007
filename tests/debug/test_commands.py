"""`kdebug attach ... -- COMMAND` and every failure, through the real entry point, in-process."""

from __future__ import annotations

import pytest

from kdebug.errors import ExitCode
from tests.fixtures.kdebug_cli import all_running, ephemeral_names
from tests.fixtures.pods import SCRATCH_IMAGE


def test_command_exit_code_is_kdebugs_exit_code(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "sh", "-c", "exit 4")
    assert result.code == 4
    assert "Traceback" not in result.err


def test_command_output_goes_to_stdout_and_chatter_to_stderr(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "echo", "on-stdout")
    assert (result.code, result.out) == (0, "on-stdout\n")
    assert "the target's filesystem is at /proc/1/root" in result.err


def test_fast_command_output_is_not_lost(kubeconfig, run_kdebug):
    script = "for i in 1 2 3 4 5; do echo line$i; done; echo err >&2"
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "sh", "-c", script)
    assert result.out.splitlines() == ["line1", "line2", "line3", "line4", "line5", "err"]


def test_deployment_resolves_to_one_of_its_pods(demo_emulator, kubeconfig, run_kdebug):
    result = run_kdebug(
        "attach", "deploy/shop", "-n", "demo", "--kubeconfig", str(kubeconfig), "--", "echo", "ok"
    )
    assert (result.code, result.out) == (0, "ok\n")
    chosen = result.err.split("deployment/shop -> pod demo/")[1].split()[0]
    assert chosen.startswith("shop-")
    assert len(ephemeral_names(demo_emulator, "demo", chosen)) == 1


def test_selector_resolves_to_a_matching_pod(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "-l", "app=shop", "--kubeconfig", str(kubeconfig), "--", "echo", "picked")
    assert (result.code, result.out) == (0, "picked\n")
    assert "selector app=shop -> pod demo/shop-" in result.err


def test_selector_without_match_names_the_selector(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "-l", "app=nothing", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.NOT_FOUND
    assert "no pods match selector app=nothing in namespace demo" in result.err


@pytest.mark.parametrize(
    ("args", "pod_annotations", "container"),
    [
        pytest.param([], {"kubectl.kubernetes.io/default-container": "sidecar"}, "sidecar", id="annotation"),
        pytest.param(["-c", "app"], {"kubectl.kubernetes.io/default-container": "sidecar"}, "app", id="-c"),
    ],
)
def test_container_choice(demo_emulator, kubeconfig, run_kdebug, make_pod, args, pod_annotations, container):
    demo_emulator.apply(
        make_pod(name="two", containers=["app", "sidecar"], namespace="demo", annotations=pod_annotations)
    )
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo", "two"), timeout=10)
    result = run_kdebug("attach", "two", *args, "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == 0
    stored = demo_emulator.get("pods", "demo", "two")
    assert stored["spec"]["ephemeralContainers"][0]["targetContainerName"] == container


def test_several_containers_without_hint_are_listed(demo_emulator, kubeconfig, run_kdebug, make_pod):
    demo_emulator.apply(make_pod(name="two", containers=["app", "sidecar"], namespace="demo"))
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo", "two"), timeout=10)
    result = run_kdebug("attach", "two", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.USAGE
    assert "pod two has 2 containers (app, sidecar): choose one with -c" in result.err


def test_unknown_pod_names_nearest(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "wbe", "--kubeconfig", str(kubeconfig))
    assert result.code == ExitCode.NOT_FOUND
    assert result.err.splitlines()[0] == 'error: pod "wbe" not found in namespace demo (nearest: web)'


def test_unknown_deployment_names_nearest(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "deploy/shpo", "--kubeconfig", str(kubeconfig))
    assert result.code == ExitCode.NOT_FOUND
    assert 'deployment "shpo" not found in namespace demo (nearest: shop)' in result.err


def test_image_pull_failure_is_start_failed_with_reason(demo_emulator, kubeconfig, run_kdebug):
    result = run_kdebug(
        "attach",
        "web",
        "--kubeconfig",
        str(kubeconfig),
        "--image",
        "registry.kdebug.test/no/such:1",
        "--",
        "true",
    )
    assert result.code == ExitCode.START_FAILED
    first = result.err.splitlines()[-2]
    assert first.startswith("error: debug container kdebug-") and "ErrImagePull" in first
    assert "registry.kdebug.test/no/such:1 (imagePullPolicy IfNotPresent)" in result.err


def add_viewer(emulator, tmp_path):
    emulator.add_user(
        "viewer",
        rules=[
            {"verbs": ["get", "list", "watch"], "resources": ["pods"], "namespaces": ["*"], "apiGroups": [""]}
        ],
    )
    config = tmp_path / "viewer.yaml"
    emulator.write_kubeconfig(config, user="viewer", namespace="demo")
    emulator.wait_for(lambda: all_running(emulator, "demo"), timeout=15)
    return config


def test_missing_permission_fails_in_preflight_before_any_patch(demo_emulator, tmp_path, run_kdebug):
    config = add_viewer(demo_emulator, tmp_path)
    result = run_kdebug("attach", "web", "--kubeconfig", str(config), "--", "true")
    assert result.code == ExitCode.PERMISSION_DENIED
    assert "patch pods/ephemeralcontainers" in result.err
    assert not [r for r in demo_emulator.requests if r["method"] == "PATCH"]


def test_forbidden_patch_keeps_server_message(demo_emulator, tmp_path, run_kdebug):
    demo_emulator.access_reviews_enabled = False  # no preflight answer: the real request decides
    config = add_viewer(demo_emulator, tmp_path)
    result = run_kdebug("attach", "web", "--kubeconfig", str(config), "--", "true")
    assert result.code == ExitCode.PERMISSION_DENIED
    assert 'User "viewer" cannot patch resource "pods/ephemeralcontainers"' in result.err
    assert "Traceback" not in result.err


def test_timeout_while_container_is_created(demo_emulator, kubeconfig, run_kdebug):
    demo_emulator.api.runtime.create_delay = 30  # the debug container stays in ContainerCreating
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--timeout", "1s", "--", "true")
    assert result.code == ExitCode.TIMEOUT
    assert "did not start within 1s (last state: ContainerCreating)" in result.err


def test_bad_duration_is_usage_error(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--timeout", "soon")
    assert result.code == ExitCode.USAGE
    assert result.err.startswith("error: --timeout: invalid duration 'soon'")


def test_unreachable_cluster_names_server(kubeconfig, demo_emulator, run_kdebug):
    demo_emulator.stop()
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.UNREACHABLE
    expected = f"error: cannot reach the cluster at {demo_emulator.url}: connection refused"
    assert result.err.startswith(expected)


def test_static_pod_is_refused(demo_emulator, kubeconfig, run_kdebug, make_pod):
    mirror = {"kubernetes.io/config.mirror": "x"}
    demo_emulator.apply(make_pod(name="static", namespace="demo", annotations=mirror))
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo", "static"), timeout=10)
    result = run_kdebug("attach", "static", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.NOT_SUPPORTED
    assert "static (mirror) pod" in result.err
    assert ephemeral_names(demo_emulator, "demo", "static") == []


def test_statefulset_resolves_through_owner_references(demo_emulator, kubeconfig, run_kdebug, make_pod):
    sts = demo_emulator.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "demo"},
            "spec": {
                "selector": {"matchLabels": {"app": "db"}},
                "serviceName": "db",
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "app", "image": SCRATCH_IMAGE}]},
                },
            },
        }
    )
    owned = make_pod(name="db-0", namespace="demo", labels={"app": "db"})
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "db",
            "uid": sts["metadata"]["uid"],
            "controller": True,
        }
    ]
    demo_emulator.apply(owned)
    demo_emulator.apply(
        make_pod(name="db-stray", namespace="demo", labels={"app": "db"})
    )  # same labels, no owner
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo"), timeout=10)
    result = run_kdebug("attach", "sts/db", "--kubeconfig", str(kubeconfig), "--", "echo", "ok")
    assert (result.code, result.out) == (0, "ok\n")
    assert "statefulset/db -> pod demo/db-0" in result.err


def test_missing_target_is_usage_error(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "--kubeconfig", str(kubeconfig))
    assert result.code == ExitCode.USAGE
    assert result.err == "error: missing TARGET (a pod name, KIND/NAME, or -l SELECTOR)\n"


def test_the_waits_watch_from_the_patch_answer_without_listing_the_pod(demo_emulator, kubeconfig, run_kdebug):
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == 0
    pods = "/api/v1/namespaces/demo/pods"

    def watched() -> list[dict]:  # a watch is logged when it ends: after kdebug has closed it
        return [r for r in list(demo_emulator.requests)[before:] if "watch=true" in r["query"]]

    demo_emulator.wait_for(lambda: len(watched()) >= 2, timeout=10)  # until running, then until it ended
    session = list(demo_emulator.requests)[before:]
    lists = [r for r in session if r["path"] == pods and "watch=true" not in r["query"]]
    watches = [r for r in session if r["path"] == pods and "watch=true" in r["query"]]
    patch = next(r for r in session if r["method"] == "PATCH")
    assert lists == []
    assert watches and all("resourceVersion=" in r["query"] for r in watches)
    assert session.index(patch) < session.index(watches[0])
