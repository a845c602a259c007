"""Pod copies against the emulator: a copy of a crash-looping pod runs its debugger, keeps out of the
original's Service, carries kdebug's label and annotations, and only copies are ever deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kdebug.debug import copy_spec as copies
from kdebug.debug import spec
from kdebug.debug.copy_pods import create_copy, delete_copy, list_copies
from kdebug.debug.wait import start_failure, wait_for_container
from kdebug.errors import StartFailedError, UsageError, WaitTimeoutError
from kdebug.kube.watch import deadline_in
from tests.fixtures.cluster import BUSYBOX, mutating_requests

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
CRASHING = ["sh", "-c", "echo starting; exit 3"]


def debugger(image: str = BUSYBOX) -> dict:
    return spec.build_ephemeral_container(
        name="kdebug-dbg",
        image=image,
        command=["sh"],
        target="app",
        session_id="session-1",
        stdin=True,
        tty=True,
    )


@pytest.fixture
def crashing_pod(cluster) -> dict:
    cluster.pod(
        "default",
        "shop",
        image=BUSYBOX,
        command=CRASHING,
        wait=False,
        labels={"app": "shop", "tier": "web", "pod-template-hash": "abc12"},
    )
    cluster.wait_container("default", "shop", "app", "waiting", reason="CrashLoopBackOff")
    return cluster.fresh_pod("default", "shop")


def wait_debugger_running(client, name: str, timeout_s: float, clock=None) -> dict:
    """The session's wait for a copy's debugger (what `attach --copy` does before it streams)."""
    remaining = deadline_in(timeout_s, clock) if clock else deadline_in(timeout_s)
    pod, state = wait_for_container(
        client,
        "default",
        name,
        "kdebug-dbg",
        remaining,
        until_terminated=False,
        timeout_error=lambda last: WaitTimeoutError(f"did not start within {timeout_s:g}s"),
    )
    if state.phase == "failed":
        raise start_failure(pod, "kdebug-dbg", state)
    return pod


def make_copy(cluster, pod: dict, **kwargs) -> dict:
    return create_copy(
        cluster.client(),
        pod,
        "app",
        debugger(kwargs.pop("image", BUSYBOX)),
        session_id="session-1",
        now=NOW,
        suffix="x7k2p",
        **kwargs,
    )


def test_copy_of_a_crash_looping_pod_runs_its_debugger(cluster, crashing_pod):
    created = make_copy(cluster, crashing_pod, copy_command=["sleep", "3600"])

    running = wait_debugger_running(cluster.client(), created["metadata"]["name"], 15)

    assert created["metadata"]["name"] == "shop-kdebug-x7k2p"
    assert "running" in copies_container_state(running, "kdebug-dbg")


def copies_container_state(pod: dict, name: str) -> dict:
    return next(s["state"] for s in pod["status"]["containerStatuses"] if s["name"] == name)


def test_copy_shares_one_process_namespace(cluster, crashing_pod):
    created = make_copy(cluster, crashing_pod)

    assert created["spec"]["shareProcessNamespace"] is True
    assert [c["name"] for c in created["spec"]["containers"]] == ["app", "kdebug-dbg"]


def test_copy_carries_kdebug_label_and_annotations(cluster, crashing_pod):
    created = make_copy(cluster, crashing_pod)

    assert created["metadata"]["labels"][copies.COPY_OF_LABEL] == "shop"
    assert created["metadata"]["annotations"][copies.SESSION_ANNOTATION] == "session-1"
    assert created["metadata"]["annotations"][copies.CREATED_AT_ANNOTATION] == "2026-11-27T06:00:00Z"


def test_copy_command_replaces_the_crashing_command(cluster, crashing_pod):
    created = make_copy(cluster, crashing_pod, copy_command=["sleep", "3600"])

    app = next(c for c in created["spec"]["containers"] if c["name"] == "app")
    assert app["command"] == ["sleep", "3600"]


def owned_crashing_pod(cluster, kind: str, selector: dict) -> dict:
    """The crashing pod, owned by a controller `shop` of `kind` with `selector` as matchLabels."""
    group = {"StatefulSet": "apps/v1", "ReplicaSet": "apps/v1"}[kind]
    owner = cluster.emu.apply(
        {
            "apiVersion": group,
            "kind": kind,
            "metadata": {"name": "shop", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": selector},
                    "spec": {"containers": [{"name": "app", "image": BUSYBOX}]},
                },
            },
        }
    )
    reference = {
        "apiVersion": group,
        "kind": kind,
        "name": "shop",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    cluster.pod(
        "default",
        "shop",
        image=BUSYBOX,
        command=CRASHING,
        wait=False,
        labels={"app": "shop", "tier": "web", "pod-template-hash": "abc12"},
        owner_references=[reference],
    )
    return cluster.fresh_pod("default", "shop")


def test_copy_drops_the_app_label_when_the_controller_selects_by_it(cluster):
    pod = owned_crashing_pod(cluster, "StatefulSet", {"app": "shop"})

    labels = make_copy(cluster, pod)["metadata"]["labels"]

    assert labels == {"tier": "web", copies.COPY_OF_LABEL: "shop"}


def test_copy_keeps_the_app_label_when_pod_template_hash_suffices(cluster):
    pod = owned_crashing_pod(cluster, "ReplicaSet", {"app": "shop", "pod-template-hash": "abc12"})

    labels = make_copy(cluster, pod)["metadata"]["labels"]

    assert labels == {"app": "shop", "tier": "web", copies.COPY_OF_LABEL: "shop"}


def test_copy_has_no_owner_references(cluster):
    pod = owned_crashing_pod(cluster, "ReplicaSet", {"app": "shop", "pod-template-hash": "abc12"})

    assert "ownerReferences" not in make_copy(cluster, pod)["metadata"]


def test_creating_a_copy_leaves_the_original_untouched(cluster, crashing_pod):
    before = len(cluster.emu.requests)

    make_copy(cluster, crashing_pod)

    writes = [(r["method"], r["path"]) for r in mutating_requests(cluster.emu, before)]
    assert writes == [("POST", "/api/v1/namespaces/default/pods")]


def test_waiting_for_a_debugger_that_cannot_be_pulled_fails(cluster, crashing_pod):
    created = make_copy(cluster, crashing_pod, image="registry.kdebug.test/nope:1")

    with pytest.raises(StartFailedError, match="ErrImagePull|ImagePullBackOff"):
        wait_debugger_running(cluster.client(), created["metadata"]["name"], 15)


def test_waiting_times_out(cluster, crashing_pod):
    created = make_copy(cluster, crashing_pod)
    ticks = iter([0.0, 100.0, 100.0, 100.0])  # the deadline has passed at the first look

    with pytest.raises(WaitTimeoutError, match="did not start within 5s"):
        wait_debugger_running(cluster.client(), created["metadata"]["name"], 5, clock=lambda: next(ticks))


def test_delete_copy_deletes_the_copy(cluster, crashing_pod):
    name = make_copy(cluster, crashing_pod)["metadata"]["name"]

    assert delete_copy(cluster.client(), "default", name) is True
    assert cluster.emu.get("pods", "default", name) is None


def test_delete_copy_refuses_a_pod_that_is_not_a_copy(cluster, crashing_pod):
    before = len(cluster.emu.requests)

    with pytest.raises(UsageError, match='pod "shop" in namespace default is not a kdebug copy'):
        delete_copy(cluster.client(), "default", "shop")

    assert mutating_requests(cluster.emu, before) == []
    assert cluster.emu.get("pods", "default", "shop") is not None


def test_delete_copy_refuses_a_pod_with_only_the_label(cluster):
    cluster.pod("default", "lookalike", labels={copies.COPY_OF_LABEL: "shop"})

    with pytest.raises(UsageError):
        delete_copy(cluster.client(), "default", "lookalike")

    assert cluster.emu.get("pods", "default", "lookalike") is not None


def test_delete_copy_of_a_gone_pod_is_false(cluster):
    assert delete_copy(cluster.client(), "default", "never-existed") is False


@pytest.mark.parametrize(
    ("age", "listed"),
    [
        pytest.param(timedelta(hours=2), True, id="older than the limit is a leftover"),
        pytest.param(timedelta(minutes=5), False, id="a fresh copy is not"),
    ],
)
def test_leftover_copies_by_age(cluster, crashing_pod, age, listed):
    name = make_copy(cluster, crashing_pod)["metadata"]["name"]

    # what `kdebug doctor` does: list the copies (facts), then judge their age (checks)
    leftovers = copies.leftover_copies(
        list_copies(cluster.client(), "default"), NOW + age, timedelta(hours=1)
    )

    assert [p["metadata"]["name"] for p in leftovers] == ([name] if listed else [])
