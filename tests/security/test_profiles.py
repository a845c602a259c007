"""Profiles as mutators, the auto choice, and admission predicted with kdebug.security.podsecurity."""

from __future__ import annotations

import copy

import pytest

from kdebug.errors import UsageError
from kdebug.security.profiles import (
    PROFILES,
    ProfileDecision,
    apply_profile,
    check_explicit_profile,
    choose_auto_profile,
    choose_profile_for_level,
    explicit_profile_user,
    pod_with_ephemeral_container,
    validate_profile,
)
from tests.fixtures.pods import build_pod

DEBUGGER = {
    "name": "kdebug-bcdfg",
    "image": "docker.io/library/busybox:1.36.1",
    "command": ["sh"],
    "targetContainerName": "app",
    "stdin": True,
    "tty": True,
    "terminationMessagePolicy": "File",
}
DEBUGGER_AS_NOBODY = {**DEBUGGER, "securityContext": {"runAsUser": 65534}}

RESTRICTED_POD_SC = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def make_pod(
    *,
    container_sc: dict | None = None,
    pod_sc: dict | None = None,
    ephemeral: list[dict] | None = None,
) -> dict:
    return build_pod(
        name="shop",
        namespace="lab",
        image="gcr.io/distroless/static-debian12",
        container_security_context=container_sc,
        security_context=pod_sc,
        ephemeral_containers=ephemeral or None,
    )


def restricted_pod(run_as: tuple[int, int] | None = None, ephemeral: list[dict] | None = None) -> dict:
    """A pod that itself meets the restricted level (a non-root image user unless run_as is given)."""
    pod_sc = dict(RESTRICTED_POD_SC)
    if run_as is not None:
        pod_sc.update(runAsUser=run_as[0], runAsGroup=run_as[1])
    return make_pod(container_sc=dict(RESTRICTED_CONTAINER_SC), pod_sc=pod_sc, ephemeral=ephemeral)


def namespace_labels(level: str) -> dict:
    return {"kubernetes.io/metadata.name": "lab", "pod-security.kubernetes.io/enforce": level}


# --- each profile's container ---


@pytest.mark.parametrize(
    ("profile", "container", "expected_security_context"),
    [
        pytest.param(
            "general", DEBUGGER, {"capabilities": {"add": ["SYS_PTRACE"]}}, id="general adds SYS_PTRACE"
        ),
        pytest.param(
            "general",
            DEBUGGER_AS_NOBODY,
            {"runAsUser": 65534, "capabilities": {"add": ["SYS_PTRACE"]}},
            id="general keeps an existing security context",
        ),
        pytest.param("baseline", DEBUGGER_AS_NOBODY, None, id="baseline clears the security context"),
        pytest.param(
            "restricted",
            DEBUGGER_AS_NOBODY,
            {
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
                "allowPrivilegeEscalation": False,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            id="restricted: non-root, drop all, no escalation, runtime default seccomp, no runAsUser",
        ),
        pytest.param(
            "netadmin",
            DEBUGGER,
            {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
            id="netadmin adds two caps",
        ),
        pytest.param("sysadmin", DEBUGGER, {"privileged": True}, id="sysadmin is privileged"),
    ],
)
def test_profile_container(profile: str, container: dict, expected_security_context: dict | None) -> None:
    expected = {k: v for k, v in container.items() if k != "securityContext"}
    if expected_security_context is not None:
        expected["securityContext"] = expected_security_context
    assert apply_profile(container, profile) == expected


@pytest.mark.parametrize("profile", PROFILES)
def test_apply_profile_leaves_its_input_alone(profile: str) -> None:
    container = copy.deepcopy(DEBUGGER_AS_NOBODY)
    apply_profile(container, profile, run_as_user=65532, run_as_group=65532)
    assert container == DEBUGGER_AS_NOBODY


@pytest.mark.parametrize(
    ("profile", "expected_security_context"),
    [
        pytest.param(
            "baseline", {"runAsUser": 65532, "runAsGroup": 65532}, id="baseline then the target's ids"
        ),
        pytest.param(
            "restricted",
            {
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
                "allowPrivilegeEscalation": False,
                "seccompProfile": {"type": "RuntimeDefault"},
                "runAsUser": 65532,
                "runAsGroup": 65532,
            },
            id="restricted then the target's ids",
        ),
    ],
)
def test_user_is_set_after_the_profile(profile: str, expected_security_context: dict) -> None:
    result = apply_profile(DEBUGGER_AS_NOBODY, profile, run_as_user=65532, run_as_group=65532)
    assert result["securityContext"] == expected_security_context


def test_general_does_not_add_a_capability_twice() -> None:
    once = apply_profile(DEBUGGER, "general")
    assert apply_profile(once, "general")["securityContext"] == {"capabilities": {"add": ["SYS_PTRACE"]}}


@pytest.mark.parametrize("name", ["auto ", "privileged", "legacy", ""])
def test_unknown_profile_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match="unknown profile"):
        validate_profile(name)


def test_apply_profile_refuses_auto() -> None:
    with pytest.raises(UsageError, match="unknown profile 'auto'"):
        apply_profile(DEBUGGER, "auto")


def test_candidate_is_appended_to_earlier_ephemeral_containers() -> None:
    old = {"name": "kdebug-old", "image": "busybox"}
    pod = make_pod(ephemeral=[old])
    result = pod_with_ephemeral_container(pod, DEBUGGER)
    assert result["spec"]["ephemeralContainers"] == [old, DEBUGGER]
    assert pod["spec"]["ephemeralContainers"] == [old]


# --- auto decisions for a known level (no admission prediction) ---

NONROOT_IMAGE = "65532"
ROOT_IMAGE = ""


@pytest.mark.parametrize(
    ("level", "pod", "image_user", "expected"),
    [
        pytest.param(
            "privileged", make_pod(), ROOT_IMAGE, ("general", None, None, True), id="privileged, root"
        ),
        pytest.param(
            "privileged",
            make_pod(),
            NONROOT_IMAGE,
            ("restricted", 65532, 65532, True),
            id="privileged, nonroot image: least privilege, the target's ids without capabilities",
        ),
        pytest.param(
            "privileged",
            make_pod(pod_sc={"runAsUser": 1000, "runAsGroup": 3000}),
            ROOT_IMAGE,
            ("restricted", 1000, 3000, True),
            id="privileged, pod-level non-root user is inherited: run as target",
        ),
        pytest.param("baseline", make_pod(), ROOT_IMAGE, ("baseline", None, None, True), id="baseline, root"),
        pytest.param(
            "baseline",
            make_pod(),
            NONROOT_IMAGE,
            ("restricted", 65532, 65532, True),
            id="baseline, nonroot image",
        ),
        pytest.param(
            "baseline",
            make_pod(container_sc={"runAsUser": 2000, "runAsGroup": 2001}),
            ROOT_IMAGE,
            ("restricted", 2000, 2001, True),
            id="baseline, container-level user",
        ),
        pytest.param(
            "baseline",
            make_pod(),
            "appuser",
            ("baseline", None, None, None),
            id="baseline, unknown image user",
        ),
        pytest.param(
            "restricted",
            make_pod(),
            NONROOT_IMAGE,
            ("restricted", 65532, 65532, True),
            id="restricted, nonroot",
        ),
        pytest.param(
            "restricted",
            make_pod(pod_sc={"runAsUser": 1001, "runAsGroup": 1001}),
            ROOT_IMAGE,
            ("restricted", 1001, 1001, True),
            id="restricted, pod-level user",
        ),
        pytest.param(
            "restricted",
            make_pod(),
            ROOT_IMAGE,
            ("restricted", 65532, 65532, False),
            id="restricted, root target: non-root debugger cannot read",
        ),
        pytest.param(
            "restricted",
            make_pod(),
            None,
            ("restricted", 65532, 65532, None),
            id="restricted, unknown target user",
        ),
    ],
)
def test_choice_for_level(level: str, pod: dict, image_user: str | None, expected: tuple) -> None:
    decision = choose_profile_for_level(pod, "app", level, image_user)
    assert (
        decision.profile,
        decision.run_as_user,
        decision.run_as_group,
        decision.proc_root_readable,
    ) == expected


def test_pod_requiring_non_root_gets_a_non_root_debugger() -> None:
    pod = make_pod(pod_sc={"runAsNonRoot": True})
    decision = choose_profile_for_level(pod, "app", "privileged", "appuser")
    assert (decision.profile, decision.run_as_user, decision.run_as_group) == ("general", 65532, 65532)


def test_reason_warns_when_a_root_target_is_unreadable() -> None:
    decision = choose_profile_for_level(make_pod(), "app", "restricted", ROOT_IMAGE)
    assert "will NOT be readable" in decision.reason and "namespace enforces restricted" in decision.reason


def test_reason_says_a_non_root_target_is_read_without_capabilities() -> None:
    decision = choose_profile_for_level(make_pod(pod_sc={"runAsUser": 1000}), "app", "privileged", ROOT_IMAGE)
    assert "every capability dropped" in decision.reason and "SYS_PTRACE" not in decision.reason


@pytest.mark.parametrize(
    ("profile", "image_user", "expected"),
    [
        pytest.param("general", NONROOT_IMAGE, None, id="general stays root"),
        pytest.param("baseline", NONROOT_IMAGE, (65532, 65532), id="baseline runs as the nonroot target"),
        pytest.param("baseline", ROOT_IMAGE, None, id="baseline with a root target stays root"),
        pytest.param("restricted", ROOT_IMAGE, (65532, 65532), id="restricted never runs as root"),
        pytest.param("sysadmin", NONROOT_IMAGE, None, id="sysadmin stays root"),
    ],
)
def test_explicit_profile_user(profile: str, image_user: str, expected: tuple[int, int] | None) -> None:
    user = explicit_profile_user(make_pod(), "app", profile, image_user)
    assert (None if user is None else (user.uid, user.gid)) == expected


# --- admission prediction (needs kdebug.security.podsecurity) ---

AUTO_CASES = [
    pytest.param("privileged", make_pod(), ROOT_IMAGE, "general", id="privileged ns, root target"),
    pytest.param("privileged", make_pod(), NONROOT_IMAGE, "restricted", id="privileged ns, nonroot target"),
    pytest.param("baseline", make_pod(), ROOT_IMAGE, "baseline", id="baseline ns, root target"),
    pytest.param("baseline", make_pod(), NONROOT_IMAGE, "restricted", id="baseline ns, nonroot target"),
    pytest.param(
        "restricted", restricted_pod(), NONROOT_IMAGE, "restricted", id="restricted ns, nonroot image"
    ),
    pytest.param(
        "restricted",
        restricted_pod(run_as=(1001, 1001)),
        ROOT_IMAGE,
        "restricted",
        id="restricted ns, pod-level user",
    ),
]


@pytest.mark.parametrize(("level", "pod", "image_user", "profile"), AUTO_CASES)
def test_auto_choice_is_admitted(level: str, pod: dict, image_user: str, profile: str) -> None:
    decision = choose_auto_profile(pod, "app", namespace_labels(level), image_user, debug_container=DEBUGGER)
    assert (decision.profile, decision.violations_if_forced, decision.level) == (profile, [], level)


@pytest.mark.parametrize(
    ("level", "more_capable"),
    [
        pytest.param("baseline", "general", id="baseline ns rejects general"),
        pytest.param("restricted", "baseline", id="restricted ns rejects baseline"),
    ],
)
def test_auto_choice_is_the_most_capable_admitted(level: str, more_capable: str) -> None:
    pod = restricted_pod()
    stronger = apply_profile(DEBUGGER, more_capable)
    assert check_explicit_profile(pod, stronger, namespace_labels(level)) != []


@pytest.mark.parametrize("level", ["privileged", "baseline", "restricted"])
@pytest.mark.parametrize("profile", PROFILES)
def test_prediction_equals_podsecurity_verdict(profile: str, level: str) -> None:
    from kdebug.security import podsecurity

    pod = restricted_pod()
    container = apply_profile(DEBUGGER, profile, run_as_user=65532, run_as_group=65532)
    whole_pod = {**pod, "spec": {**pod["spec"], "ephemeralContainers": [container]}}
    assert check_explicit_profile(pod, container, namespace_labels(level)) == podsecurity.check_pod(
        whole_pod, level, "latest"
    )


@pytest.mark.parametrize(
    ("profile", "admitted"),
    [
        pytest.param("general", False, id="general rejected"),
        pytest.param("baseline", True, id="baseline admitted"),
        pytest.param("sysadmin", False, id="sysadmin rejected"),
    ],
)
def test_explicit_profile_in_a_baseline_namespace(profile: str, admitted: bool) -> None:
    container = apply_profile(DEBUGGER, profile)
    assert (check_explicit_profile(make_pod(), container, namespace_labels("baseline")) == []) is admitted


@pytest.mark.parametrize("profile", PROFILES)
def test_old_privileged_debugger_blocks_every_profile_in_baseline(profile: str) -> None:
    old = {"name": "kdebug-old", "image": "busybox", "securityContext": {"privileged": True}}
    pod = make_pod(ephemeral=[old])
    container = apply_profile(DEBUGGER, profile, run_as_user=65532, run_as_group=65532)
    violations = check_explicit_profile(pod, container, namespace_labels("baseline"))
    assert any("kdebug-old" in v for v in violations)


def test_auto_reports_violations_it_cannot_avoid() -> None:
    old = {"name": "kdebug-old", "image": "busybox", "securityContext": {"privileged": True}}
    decision = choose_auto_profile(
        make_pod(ephemeral=[old]), "app", namespace_labels("baseline"), NONROOT_IMAGE
    )
    assert decision.profile == "restricted" and decision.violations_if_forced and "--copy" in decision.reason


def test_unlabelled_namespace_is_privileged() -> None:
    decision = choose_auto_profile(make_pod(), "app", {}, ROOT_IMAGE)
    assert isinstance(decision, ProfileDecision) and (decision.profile, decision.level) == (
        "general",
        "privileged",
    )
