"""Security decisions against the emulator's Pod Security admission: the decided container is admitted
(a real PATCH answers 200); an explicit profile the namespace rejects is refused before any PATCH."""

from __future__ import annotations

import pytest

from kdebug.debug import spec
from kdebug.errors import ExitCode, PermissionDeniedError
from kdebug.models import ImageChoice
from kdebug.security.decision import apply_security, decide_security
from tests.fixtures.cluster import BUSYBOX, mutating_requests

CHOICE = ImageChoice(image=BUSYBOX, shell=["sh"], reason="test")
EPHEMERAL_PATH = "/api/v1/namespaces/{ns}/pods/{pod}/ephemeralcontainers"


def debug_container(target: str = "app", choice: ImageChoice = CHOICE) -> dict:
    return spec.build_ephemeral_container(
        name="kdebug-tests",
        image=choice.image,
        command=["sh"],
        target=target,
        session_id="s1",
        stdin=True,
        tty=True,
        run_as_user=choice.run_as_user,
        run_as_group=choice.run_as_group,
    )


def patch_ephemeral(client, namespace: str, pod: str, container: dict) -> dict:
    return client.patch(
        EPHEMERAL_PATH.format(ns=namespace, pod=pod), spec.ephemeral_patch(container), spec.PATCH_CONTENT_TYPE
    )


def last_patch_code(emu) -> int:
    return next(r["code"] for r in reversed(emu.requests) if r["method"] == "PATCH")


@pytest.mark.parametrize(
    ("level", "nonroot", "profile", "user", "readable"),
    [
        pytest.param(
            "privileged", False, "general", None, True, id="privileged, root target: general as root"
        ),
        pytest.param(
            "privileged",
            True,
            "restricted",
            (65532, 65532),
            True,
            id="privileged, non-root pod: restricted as the target's ids",
        ),
        pytest.param("baseline", False, "baseline", None, True, id="baseline, root target: baseline as root"),
        pytest.param(
            "baseline",
            True,
            "restricted",
            (65532, 65532),
            True,
            id="baseline, non-root target: restricted as the target's ids",
        ),
        pytest.param(
            "restricted",
            False,
            "restricted",
            (65532, 65532),
            False,
            id="restricted, root target: restricted as 65532, files unreadable",
        ),
        pytest.param(
            "restricted",
            True,
            "restricted",
            (65532, 65532),
            True,
            id="restricted, non-root target: restricted as the target's ids",
        ),
    ],
)
def test_auto_picks_an_admitted_profile(cluster, level, nonroot, profile, user, readable):
    cluster.namespace("team", level)
    pod = cluster.pod("team", nonroot=nonroot, restricted=level == "restricted")
    client = cluster.client(namespace="team")

    decision = decide_security(
        client, pod, "app", "auto", False, CHOICE, image_user="65532" if nonroot else "0"
    )
    container = apply_security(debug_container(), decision)
    patch_ephemeral(client, "team", "app", container)

    assert (decision.profile, decision.level) == (profile, level)
    assert (decision.run_as_user, decision.run_as_group) == (user or (None, None))
    assert decision.proc_root_readable is readable
    assert last_patch_code(cluster.emu) == 200


def test_auto_reads_the_target_user_from_the_image_choice(cluster):
    cluster.namespace("team", "baseline")
    pod = cluster.pod("team", image="gcr.io/distroless/static-debian12:nonroot")  # no securityContext
    choice = ImageChoice(image=BUSYBOX, run_as_user=65532, run_as_group=65532)

    decision = decide_security(cluster.client(), pod, "app", "auto", False, choice)

    assert (decision.profile, decision.run_as_user, decision.run_as_group) == ("restricted", 65532, 65532)


def test_the_reason_names_the_profile_and_the_level(cluster):
    cluster.namespace("team", "restricted")
    pod = cluster.pod("team", nonroot=True, restricted=True)

    decision = decide_security(cluster.client(), pod, "app", image_choice=CHOICE, image_user="65532")

    assert decision.reason.startswith("restricted: runs as the target's 65532:65532")
    assert "namespace enforces restricted" in decision.reason
    assert "\n" not in decision.reason


@pytest.mark.parametrize(
    ("level", "profile", "violation"),
    [
        pytest.param("baseline", "sysadmin", "privileged", id="sysadmin in baseline"),
        pytest.param("baseline", "netadmin", "NET_ADMIN", id="netadmin in baseline"),
        pytest.param("restricted", "general", "SYS_PTRACE", id="general in restricted"),
        pytest.param("restricted", "baseline", "allowPrivilegeEscalation", id="baseline in restricted"),
    ],
)
def test_an_explicit_profile_the_namespace_rejects_fails_before_any_request(
    cluster, level, profile, violation
):
    cluster.namespace("team", level)
    pod = cluster.pod("team", nonroot=True, restricted=level == "restricted")
    client = cluster.client()
    before = len(cluster.emu.requests)

    with pytest.raises(PermissionDeniedError) as caught:
        decide_security(client, pod, "app", profile, False, CHOICE, image_user="65532")

    assert violation in caught.value.message
    assert f"profile {profile} violates namespace team's Pod Security" in caught.value.message
    assert caught.value.exit_code == ExitCode.PERMISSION_DENIED
    assert mutating_requests(cluster.emu, before) == []


def test_an_explicit_profile_the_namespace_admits_is_used(cluster):
    cluster.namespace("team", "baseline")
    pod = cluster.pod("team")
    client = cluster.client()

    decision = decide_security(client, pod, "app", "baseline", False, CHOICE, image_user="0")
    patch_ephemeral(client, "team", "app", apply_security(debug_container(), decision))

    assert (decision.profile, decision.requested, decision.violations) == ("baseline", "baseline", [])
    assert last_patch_code(cluster.emu) == 200


def test_force_sends_a_rejected_profile_and_the_server_refuses_it(cluster):
    cluster.namespace("team", "baseline")
    pod = cluster.pod("team")
    client = cluster.client()

    decision = decide_security(client, pod, "app", "sysadmin", True, CHOICE, image_user="0")
    with pytest.raises(PermissionDeniedError, match="violates PodSecurity"):
        patch_ephemeral(client, "team", "app", apply_security(debug_container(), decision))

    assert decision.forced is True
    assert "--force" in decision.reason


def test_an_earlier_privileged_debugger_blocks_auto_with_a_copy_hint(cluster):
    cluster.namespace("team")
    pod = cluster.pod("team")
    client = cluster.client()
    old = {**debug_container(), "name": "kdebug-old", "securityContext": {"privileged": True}}
    patch_ephemeral(client, "team", "app", old)
    cluster.namespace("team", "baseline")
    pod = cluster.fresh_pod("team", "app")
    before = len(cluster.emu.requests)

    with pytest.raises(PermissionDeniedError) as caught:
        decide_security(client, pod, "app", "auto", False, CHOICE, image_user="0")

    assert "privileged" in caught.value.message
    assert "--copy" in (caught.value.hint or "")
    assert mutating_requests(cluster.emu, before) == []


def test_unreadable_namespace_labels_pick_restricted_for_a_non_root_target(cluster):
    cluster.namespace("team", "restricted")
    pod = cluster.pod("team", nonroot=True, restricted=True)
    cluster.emu.add_user("bob", rules=[{"verbs": ["get", "patch"], "resources": ["pods", "pods/*"]}])
    client = cluster.client("bob", "team")

    decision = decide_security(client, pod, "app", "auto", False, CHOICE, image_user="65532")
    patch_ephemeral(client, "team", "app", apply_security(debug_container(), decision))

    assert (decision.level, decision.profile) == ("unknown", "restricted")
    assert "could not be read" in decision.reason
    assert last_patch_code(cluster.emu) == 200


def test_unreadable_namespace_labels_pick_general_for_a_root_target(cluster):
    pod = cluster.pod("default")
    cluster.emu.add_user("bob", rules=[{"verbs": ["get"], "resources": ["pods"]}])

    decision = decide_security(cluster.client("bob"), pod, "app", "auto", False, CHOICE, image_user="0")

    assert (decision.level, decision.profile, decision.run_as_user) == ("unknown", "general", None)


def test_an_unknown_profile_is_a_usage_error(cluster):
    from kdebug.errors import UsageError

    pod = cluster.pod("default")
    with pytest.raises(UsageError, match="unknown profile 'root'"):
        decide_security(cluster.client(), pod, "app", "root", False, CHOICE)


def test_apply_security_replaces_the_user_from_the_image_choice():
    from kdebug.security.decision import SecurityDecision

    choice = ImageChoice(image=BUSYBOX, run_as_user=1000, run_as_group=1000)
    decision = SecurityDecision("general", "auto", None, None, "why", "privileged")

    container = apply_security(debug_container(choice=choice), decision)

    assert container["securityContext"] == {"capabilities": {"add": ["SYS_PTRACE"]}}


def test_apply_security_leaves_its_input_alone():
    from kdebug.security.decision import SecurityDecision

    original = debug_container()
    decision = SecurityDecision("restricted", "auto", 65532, 65532, "why", "restricted")

    apply_security(original, decision)

    assert "securityContext" not in original


def test_violations_name_the_real_debug_container_when_given(cluster):
    cluster.namespace("team", "baseline")
    pod = cluster.pod("team")

    with pytest.raises(PermissionDeniedError) as caught:
        decide_security(
            cluster.client(),
            pod,
            "app",
            "sysadmin",
            False,
            CHOICE,
            image_user="0",
            debug_container=debug_container(),
        )

    assert 'container "kdebug-tests" must not set securityContext.privileged=true' in caught.value.message
