import pytest

from kdebug.errors import ExitCode, NotFoundError, NotSupportedError, UsageError
from kdebug.kube.targets import (
    choose_container,
    choose_pod,
    label_selector_string,
    not_found_message,
    parse_target,
    pods_owned_by,
    refuse_undebuggable,
)
from kdebug.models import TargetRef
from tests.fixtures import pods


def pod(
    name="web",
    *,
    containers=("app",),
    phase="Running",
    ready=True,
    created="2026-01-01T00:00:00Z",
    owners=(),
    annotations=None,
    init=(),
    running=None,
    waiting=None,
    os_name=None,
    deleting=False,
):
    up = set(containers) if running is None else set(running)
    started, creating = pods.running(created), pods.waiting(waiting or "ContainerCreating")
    return pods.build_pod(
        typed=False,
        name=name,
        namespace="demo",
        uid=f"uid-{name}",
        created=created,
        owners=[pods.owner(k, n, uid=u) for k, n, u in owners],
        annotations=annotations or None,
        deleted=created if deleting else None,
        image="x",
        containers=containers,
        init_containers=init,
        os=os_name or None,
        phase=phase,
        container_statuses=[pods.container_status(c, started if c in up else creating) for c in containers],
        ready=ready,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("web", TargetRef("pod", "web"), id="bare name is a pod"),
        pytest.param("pod/web", TargetRef("pod", "web"), id="pod prefix"),
        pytest.param("pods/web", TargetRef("pod", "web"), id="pods prefix"),
        pytest.param("po/web", TargetRef("pod", "web"), id="po prefix"),
        pytest.param("deploy/shop", TargetRef("deployment", "shop"), id="deploy"),
        pytest.param("deployment/shop", TargetRef("deployment", "shop"), id="deployment"),
        pytest.param("deployments/shop", TargetRef("deployment", "shop"), id="deployments"),
        pytest.param("sts/db", TargetRef("statefulset", "db"), id="statefulset"),
        pytest.param("ds/agent", TargetRef("daemonset", "agent"), id="daemonset"),
        pytest.param("rs/shop-1", TargetRef("replicaset", "shop-1"), id="replicaset"),
        pytest.param("job/migrate", TargetRef("job", "migrate"), id="job"),
        pytest.param("Deploy/shop", TargetRef("deployment", "shop"), id="kind is case-insensitive"),
        pytest.param("web-1.cache", TargetRef("pod", "web-1.cache"), id="dotted subdomain"),
        pytest.param("a" * 253, TargetRef("pod", "a" * 253), id="253 characters"),
    ],
)
def test_parse_target_reads_kind_and_name(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("svc/web", id="unknown kind"),
        pytest.param("deploy/", id="missing name"),
        pytest.param("deploy/a/b", id="too many slashes"),
        pytest.param("", id="empty"),
        pytest.param("web\n", id="trailing newline"),
        pytest.param("Web", id="uppercase"),
        pytest.param("web.", id="ends with a dot"),
        pytest.param("-web", id="starts with a dash"),
        pytest.param("a" * 254, id="254 characters"),
        pytest.param("pod/../web", id="dot-dot"),
        pytest.param("wéb", id="non-ASCII"),
    ],
)
def test_parse_target_rejects_bad_targets(text):
    with pytest.raises(UsageError):
        parse_target(text)


def test_label_selector_string_renders_labels_and_expressions():
    selector = {
        "matchLabels": {"app": "shop", "tier": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "stage"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["a"]},
            {"key": "team", "operator": "Exists"},
        ],
    }
    assert label_selector_string(selector) == (
        "app=shop,tier=web,env in (prod,stage),!canary,zone notin (a),team"
    )


def test_deployment_pods_found_through_replicaset_owner_chain():
    deployment = {"metadata": {"name": "shop", "uid": "d1"}}
    ours = {
        "metadata": {
            "name": "shop-abc",
            "uid": "rs1",
            "ownerReferences": [{"kind": "Deployment", "uid": "d1"}],
        }
    }
    other = {
        "metadata": {
            "name": "other-abc",
            "uid": "rs2",
            "ownerReferences": [{"kind": "Deployment", "uid": "d2"}],
        }
    }
    pods = [
        pod("a", owners=[("ReplicaSet", "shop-abc", "rs1")]),
        pod("b", owners=[("ReplicaSet", "other-abc", "rs2")]),
        pod("c"),
    ]
    owned = pods_owned_by(pods, deployment, "deployment", [ours, other])
    assert [p["metadata"]["name"] for p in owned] == ["a"]


def test_statefulset_pods_are_owned_directly():
    sts = {"metadata": {"name": "db", "uid": "s1"}}
    pods = [
        pod("db-0", owners=[("StatefulSet", "db", "s1")]),
        pod("db-x", owners=[("StatefulSet", "db", "s9")]),
    ]
    assert [p["metadata"]["name"] for p in pods_owned_by(pods, sts, "statefulset", [])] == ["db-0"]


@pytest.mark.parametrize(
    ("pods", "chosen"),
    [
        pytest.param(
            [pod("old", created="2026-01-01T00:00:00Z"), pod("new", created="2026-02-01T00:00:00Z")],
            "new",
            id="newest of ready pods",
        ),
        pytest.param(
            [
                pod("ready", created="2026-01-01T00:00:00Z"),
                pod("unready", ready=False, created="2026-02-01T00:00:00Z"),
            ],
            "ready",
            id="ready beats newer",
        ),
        pytest.param(
            [pod("pending", phase="Pending"), pod("running", ready=False)], "running", id="only running pods"
        ),
        pytest.param(
            [pod("leaving", deleting=True, created="2026-03-01T00:00:00Z"), pod("staying")],
            "staying",
            id="terminating pods skipped",
        ),
    ],
)
def test_choose_pod_prefers_running_ready_newest(pods, chosen):
    assert choose_pod(pods)["metadata"]["name"] == chosen


def test_choose_pod_returns_none_without_running_pods():
    assert choose_pod([pod("p", phase="Pending"), pod("s", phase="Succeeded")]) is None


def test_not_found_names_nearest_existing():
    error = not_found_message("pod", "demo", "wbe", ["web", "api", "shop-1"])
    assert isinstance(error, NotFoundError)
    assert error.message == 'pod "wbe" not found in namespace demo (nearest: web)'


def test_not_found_without_near_names_says_only_what_was_searched():
    error = not_found_message("deployment", "demo", "zzz", ["web"])
    assert error.message == 'deployment "zzz" not found in namespace demo'


@pytest.mark.parametrize(
    ("target", "requested", "chosen"),
    [
        pytest.param(pod(containers=("app",)), None, "app", id="only container"),
        pytest.param(pod(containers=("app", "sidecar")), "sidecar", "sidecar", id="-c wins"),
        pytest.param(
            pod(
                containers=("app", "sidecar"),
                annotations={"kubectl.kubernetes.io/default-container": "sidecar"},
            ),
            None,
            "sidecar",
            id="default-container annotation",
        ),
        pytest.param(
            pod(
                containers=("app", "sidecar"),
                annotations={"kubectl.kubernetes.io/default-container": "sidecar"},
            ),
            "app",
            "app",
            id="-c beats annotation",
        ),
    ],
)
def test_choose_container(target, requested, chosen):
    assert choose_container(target, requested) == chosen


def test_choose_container_lists_containers_when_ambiguous():
    with pytest.raises(UsageError) as info:
        choose_container(pod(containers=("app", "sidecar")), None)
    assert "app, sidecar" in info.value.message
    assert "-c" in info.value.message


def test_choose_container_refuses_init_containers():
    with pytest.raises(UsageError) as info:
        choose_container(pod(containers=("app",), init=("setup",)), "setup")
    assert "init container" in info.value.message


def test_choose_container_unknown_name_is_not_found_with_list():
    with pytest.raises(NotFoundError) as info:
        choose_container(pod(containers=("app", "sidecar")), "nope")
    assert "containers: app, sidecar" in info.value.message


@pytest.mark.parametrize(
    ("target", "node", "words"),
    [
        pytest.param(
            pod(annotations={"kubernetes.io/config.mirror": "abc"}),
            None,
            "static (mirror) pod",
            id="mirror pod",
        ),
        pytest.param(pod(os_name="windows"), None, "Windows", id="windows pod os"),
        pytest.param(
            pod(), {"metadata": {"labels": {"kubernetes.io/os": "windows"}}}, "Windows", id="windows node"
        ),
        pytest.param(pod(phase="Pending"), None, "is Pending", id="pending pod"),
        pytest.param(pod(phase="Succeeded"), None, "is Succeeded", id="completed pod"),
        pytest.param(
            pod(running=(), waiting="CrashLoopBackOff"),
            None,
            "not running (CrashLoopBackOff)",
            id="crash looping container",
        ),
    ],
)
def test_refuse_undebuggable_explains(target, node, words):
    with pytest.raises(NotSupportedError) as info:
        refuse_undebuggable(target, "app", node)
    assert words in info.value.message
    assert info.value.exit_code == ExitCode.NOT_SUPPORTED


def test_crash_loop_refusal_hints_at_copy():
    with pytest.raises(NotSupportedError) as info:
        refuse_undebuggable(pod(running=(), waiting="CrashLoopBackOff"), "app")
    # the hint is the command to type, for this pod, not a promise of a later version
    assert "kdebug attach web -n demo --copy" in info.value.hint


def test_running_pod_on_linux_is_accepted():
    refuse_undebuggable(pod(), "app", {"metadata": {"labels": {"kubernetes.io/os": "linux"}}})
