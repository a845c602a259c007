"""Pod Security Standards as Pod Security admission words them (k8s.io/pod-security-admission/policy)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdebug.security.podsecurity import LEVELS, check_pod, policy_from_labels
from kdebug_emulator import status
from tests.fixtures.pods import build_pod

RESTRICTED_CONTEXT = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def restricted_container(name: str = "app", **context: Any) -> dict[str, Any]:
    security = copy.deepcopy(RESTRICTED_CONTEXT)
    security.update(context)
    return {"name": name, "image": "registry.test/app:1", "securityContext": security}


def make_pod(
    containers: list[dict[str, Any]] | None = None,
    ephemeral: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return build_pod(
        name="web",
        namespace="lab",
        annotations=annotations or None,
        containers=containers or [restricted_container()],
        ephemeral_containers=ephemeral,
        spec_extra=spec,
    )


def kubectl_debugger(name: str = "debugger-abcde", security: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": "busybox:1.36",
        "targetContainerName": "app",
        "terminationMessagePolicy": "File",
        "resources": {},
    }
    if security is not None:
        container["securityContext"] = security
    return container


# ---------------------------------------------------------------- kubectl debug profiles


def test_restricted_profile_debugger_passes_restricted() -> None:
    pod = make_pod(ephemeral=[kubectl_debugger(security=copy.deepcopy(RESTRICTED_CONTEXT))])
    assert check_pod(pod, "restricted") == []


def test_general_profile_debugger_fails_baseline_with_non_default_capabilities() -> None:
    pod = make_pod(ephemeral=[kubectl_debugger(security={"capabilities": {"add": ["SYS_PTRACE"]}})])
    assert check_pod(pod, "baseline") == [
        'non-default capabilities (container "debugger-abcde" must not include "SYS_PTRACE" in '
        "securityContext.capabilities.add)"
    ]


def test_sysadmin_profile_debugger_fails_baseline_as_privileged() -> None:
    pod = make_pod(ephemeral=[kubectl_debugger(security={"privileged": True})])
    assert check_pod(pod, "baseline") == [
        'privileged (container "debugger-abcde" must not set securityContext.privileged=true)'
    ]


def test_default_debugger_in_restricted_namespace_gets_the_four_violations_in_order() -> None:
    pod = make_pod(ephemeral=[kubectl_debugger()])
    violations = check_pod(pod, "restricted", "latest")
    assert violations == [
        'allowPrivilegeEscalation != false (container "debugger-abcde" must set '
        "securityContext.allowPrivilegeEscalation=false)",
        'unrestricted capabilities (container "debugger-abcde" must set '
        'securityContext.capabilities.drop=["ALL"])',
        'runAsNonRoot != true (pod or container "debugger-abcde" must set securityContext.runAsNonRoot=true)',
        'seccompProfile (pod or container "debugger-abcde" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")',
    ]
    message = status.forbidden_pod_security("web", "restricted", "latest", violations)["message"]
    assert message.startswith(
        'pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
    )


def test_general_profile_in_restricted_namespace_lists_drop_and_add_in_one_violation() -> None:
    security = copy.deepcopy(RESTRICTED_CONTEXT)
    security["capabilities"] = {"add": ["SYS_PTRACE"]}
    pod = make_pod(ephemeral=[kubectl_debugger(security=security)])
    assert check_pod(pod, "restricted") == [
        'unrestricted capabilities (container "debugger-abcde" must set '
        'securityContext.capabilities.drop=["ALL"]; '
        'container "debugger-abcde" must not include "SYS_PTRACE" in securityContext.capabilities.add)'
    ]


def test_one_bad_earlier_debugger_fails_every_later_patch() -> None:
    good = kubectl_debugger("debugger-good", security=copy.deepcopy(RESTRICTED_CONTEXT))
    bad = kubectl_debugger("debugger-bad", security={**RESTRICTED_CONTEXT, "allowPrivilegeEscalation": True})
    pod = make_pod(ephemeral=[bad, good])
    assert check_pod(pod, "restricted") == [
        'allowPrivilegeEscalation != false (container "debugger-bad" must set '
        "securityContext.allowPrivilegeEscalation=false)"
    ]


# ---------------------------------------------------------------- every check, passing and failing


BASELINE_CASES = [
    pytest.param(
        make_pod(hostNetwork=True, hostPID=True),
        "host namespaces (hostNetwork, hostPID)",
        id="host namespaces",
    ),
    pytest.param(
        make_pod(containers=[restricted_container(privileged=True)]),
        'privileged (container "app" must not set securityContext.privileged=true)',
        id="privileged",
    ),
    pytest.param(
        make_pod(containers=[{**restricted_container(), "ports": [{"containerPort": 80, "hostPort": 8080}]}]),
        'hostPort (container "app" uses hostPort 8080)',
        id="host ports",
    ),
    pytest.param(
        make_pod(containers=[restricted_container(procMount="Unmasked")]),
        'procMount (container "app" must not set securityContext.procMount to "Unmasked")',
        id="proc mount",
    ),
    pytest.param(
        make_pod(containers=[restricted_container(seLinuxOptions={"type": "spc_t"})]),
        'seLinuxOptions (container "app" set forbidden securityContext.seLinuxOptions: type "spc_t")',
        id="selinux type",
    ),
    pytest.param(
        make_pod(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}),
        "forbidden sysctls (kernel.msgmax)",
        id="sysctls",
    ),
    pytest.param(
        make_pod(securityContext={"windowsOptions": {"hostProcess": True}}),
        "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)",
        id="host process",
    ),
    pytest.param(
        make_pod(annotations={"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
        "forbidden AppArmor profile (annotation must not set AppArmor profile type to "
        '"container.apparmor.security.beta.kubernetes.io/app="unconfined"")',
        id="apparmor annotation",
    ),
    pytest.param(
        make_pod(containers=[restricted_container(appArmorProfile={"type": "Unconfined"})]),
        'forbidden AppArmor profile (container "app" must not set AppArmor profile type to "Unconfined")',
        id="apparmor field",
    ),
    pytest.param(
        make_pod(
            containers=[
                {**restricted_container(), "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}
            ]
        ),
        'probe or lifecycle host (container "app" uses probe or lifecycle host "10.0.0.1")',
        id="probe host",
    ),
]


@pytest.mark.parametrize(("pod", "violation"), BASELINE_CASES)
@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_baseline_check_fails_at_baseline_and_restricted(
    pod: dict[str, Any], violation: str, level: str
) -> None:
    assert check_pod(pod, level) == [violation]


@pytest.mark.parametrize(("pod", "violation"), BASELINE_CASES)
def test_baseline_check_passes_at_privileged(pod: dict[str, Any], violation: str) -> None:
    assert check_pod(pod, "privileged") == []


@pytest.mark.parametrize(
    ("pod", "violation"),
    [
        pytest.param(
            make_pod(volumes=[{"name": "host", "hostPath": {"path": "/"}}]),
            'hostPath volumes (volume "host")',
            id="hostPath volume",
        ),
        pytest.param(
            make_pod(containers=[restricted_container(seccompProfile={"type": "Unconfined"})]),
            'seccompProfile (container "app" must not set securityContext.seccompProfile.type '
            'to "Unconfined")',
            id="seccomp unconfined",
        ),
    ],
)
def test_baseline_only_check_fails_baseline(pod: dict[str, Any], violation: str) -> None:
    assert check_pod(pod, "baseline") == [violation]


@pytest.mark.parametrize(
    ("pod", "violation"),
    [
        pytest.param(
            make_pod(volumes=[{"name": "host", "hostPath": {"path": "/"}}]),
            'restricted volume types (volumes ["host"] have restricted types)',
            id="hostPath volume",
        ),
        pytest.param(
            make_pod(containers=[restricted_container(allowPrivilegeEscalation=True)]),
            'allowPrivilegeEscalation != false (container "app" must set '
            "securityContext.allowPrivilegeEscalation=false)",
            id="allowPrivilegeEscalation true",
        ),
        pytest.param(
            make_pod(containers=[restricted_container(capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]})]),
            'unrestricted capabilities (container "app" must not include "NET_ADMIN" in '
            "securityContext.capabilities.add)",
            id="capability added",
        ),
        pytest.param(
            make_pod(containers=[restricted_container(runAsNonRoot=False)]),
            'runAsNonRoot != true (container "app" must not set securityContext.runAsNonRoot=false)',
            id="runAsNonRoot false",
        ),
        pytest.param(
            make_pod(containers=[restricted_container(runAsUser=0)]),
            'runAsUser=0 (container "app" must not set runAsUser=0)',
            id="runAsUser 0",
        ),
        pytest.param(
            make_pod(securityContext={"runAsUser": 0}),
            "runAsUser=0 (pod must not set runAsUser=0)",
            id="pod runAsUser 0",
        ),
    ],
)
def test_restricted_check_fails_restricted_only(pod: dict[str, Any], violation: str) -> None:
    assert check_pod(pod, "restricted") == [violation]
    assert violation not in check_pod(pod, "baseline")


def test_unconfined_seccomp_fails_restricted_too() -> None:
    pod = make_pod(containers=[restricted_container(seccompProfile={"type": "Unconfined"})])
    assert check_pod(pod, "restricted") == [
        'seccompProfile (container "app" must not set securityContext.seccompProfile.type to "Unconfined")'
    ]


def test_apparmor_pod_field_and_annotations_share_one_violation() -> None:
    pod = make_pod(
        annotations={"container.apparmor.security.beta.kubernetes.io/app": "bogus"},
        securityContext={"appArmorProfile": {"type": "Unconfined"}},
    )
    assert check_pod(pod, "baseline") == [
        "forbidden AppArmor profiles (pod and annotation must not set AppArmor profile type to "
        '"Unconfined", "container.apparmor.security.beta.kubernetes.io/app="bogus"")'
    ]


def test_selinux_container_engine_type_allowed_from_v1_31() -> None:
    pod = make_pod(containers=[restricted_container(seLinuxOptions={"type": "container_engine_t"})])
    assert check_pod(pod, "baseline", "v1.31") == []
    assert check_pod(pod, "baseline", "v1.30") == [
        'seLinuxOptions (container "app" set forbidden securityContext.seLinuxOptions: '
        'type "container_engine_t")'
    ]


def test_net_bind_service_is_allowed_at_restricted() -> None:
    container = restricted_container(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    assert check_pod(make_pod(containers=[container]), "restricted") == []


def test_baseline_default_capabilities_are_allowed_at_baseline() -> None:
    container = {"name": "app", "image": "a", "securityContext": {"capabilities": {"add": ["CHOWN", "KILL"]}}}
    assert check_pod(make_pod(containers=[container]), "baseline") == []


def test_allowed_volume_types_pass_restricted() -> None:
    volumes = [{"name": "c", "configMap": {"name": "x"}}, {"name": "e", "emptyDir": {}}]
    assert check_pod(make_pod(volumes=volumes), "restricted") == []


# ---------------------------------------------------------------- pod-level inheritance


def test_pod_level_run_as_non_root_and_seccomp_cover_containers() -> None:
    container = {
        "name": "app",
        "image": "a",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod = make_pod(
        containers=[container],
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    )
    assert check_pod(pod, "restricted") == []


def test_container_may_not_override_pod_run_as_non_root_with_false() -> None:
    pod = make_pod(
        containers=[restricted_container(runAsNonRoot=False)], securityContext={"runAsNonRoot": True}
    )
    assert check_pod(pod, "restricted") == [
        'runAsNonRoot != true (container "app" must not set securityContext.runAsNonRoot=false)'
    ]


def test_pod_setting_run_as_non_root_false_is_named() -> None:
    container = restricted_container()
    del container["securityContext"]["runAsNonRoot"]
    pod = make_pod(containers=[container], securityContext={"runAsNonRoot": False})
    assert check_pod(pod, "restricted") == [
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
    ]


def test_init_containers_come_first_and_containers_are_pluralized() -> None:
    plain = {"name": "main", "image": "a"}
    init = {"name": "init", "image": "a"}
    pod = make_pod(containers=[plain], initContainers=[init], securityContext={"runAsNonRoot": True})
    violations = check_pod(pod, "restricted")
    assert violations[0] == (
        'allowPrivilegeEscalation != false (containers "init", "main" must set '
        "securityContext.allowPrivilegeEscalation=false)"
    )


# ---------------------------------------------------------------- versions


def test_probe_host_check_only_from_v1_34() -> None:
    container = {**restricted_container(), "readinessProbe": {"tcpSocket": {"host": "h", "port": 1}}}
    pod = make_pod(containers=[container])
    assert check_pod(pod, "baseline", "v1.33") == []
    assert check_pod(pod, "baseline", "v1.34") != []


def test_run_as_user_check_only_from_v1_23() -> None:
    pod = make_pod(containers=[restricted_container(runAsUser=0)])
    assert check_pod(pod, "restricted", "v1.22") == []
    assert check_pod(pod, "restricted", "v1.23") == ['runAsUser=0 (container "app" must not set runAsUser=0)']


@pytest.mark.parametrize("version", ["1.30", "v1.x", "", "v1.030"])
def test_unparsable_version_is_evaluated_as_latest(version: str) -> None:
    container = {**restricted_container(), "readinessProbe": {"tcpSocket": {"host": "h", "port": 1}}}
    pod = make_pod(containers=[container])
    assert check_pod(pod, "baseline", version) == check_pod(pod, "baseline", "latest") != []


def test_user_namespaced_pods_may_run_as_root_in_recent_versions() -> None:
    pod = make_pod(containers=[restricted_container(runAsNonRoot=False, runAsUser=0)], hostUsers=False)
    assert check_pod(pod, "restricted", "latest") == []


# ---------------------------------------------------------------- namespace labels


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param(
            None,
            {
                "enforce": ("privileged", "latest"),
                "audit": ("privileged", "latest"),
                "warn": ("privileged", "latest"),
            },
            id="no labels",
        ),
        pytest.param(
            {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "v1.30",
                "pod-security.kubernetes.io/warn": "baseline",
            },
            {
                "enforce": ("restricted", "v1.30"),
                "audit": ("privileged", "latest"),
                "warn": ("baseline", "latest"),
            },
            id="enforce and warn",
        ),
        pytest.param(
            {"pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/audit": "bogus"},
            {
                "enforce": ("restricted", "latest"),
                "audit": ("privileged", "latest"),
                "warn": ("privileged", "latest"),
            },
            id="invalid enforce fails closed and invalid audit fails open",
        ),
        pytest.param(
            {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/enforce-version": "1.30",
            },
            {
                "enforce": ("baseline", "latest"),
                "audit": ("privileged", "latest"),
                "warn": ("privileged", "latest"),
            },
            id="invalid version means latest",
        ),
    ],
)
def test_policy_from_labels(labels: dict[str, str] | None, expected: dict[str, tuple[str, str]]) -> None:
    assert policy_from_labels(labels) == expected


def test_levels_are_ordered_from_loosest() -> None:
    assert LEVELS == ("privileged", "baseline", "restricted")


# ---------------------------------------------------------------- robustness

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["a", "ALL", "Unconfined", "app", ""]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "containers",
                    "ephemeralContainers",
                    "name",
                    "securityContext",
                    "capabilities",
                    "add",
                    "drop",
                    "volumes",
                    "ports",
                    "hostPort",
                    "runAsNonRoot",
                    "runAsUser",
                    "seccompProfile",
                    "type",
                    "sysctls",
                    "appArmorProfile",
                    "seLinuxOptions",
                    "metadata",
                    "annotations",
                    "hostUsers",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    pod=st.dictionaries(st.sampled_from(["metadata", "spec"]), _json, max_size=2),
    level=st.sampled_from(LEVELS),
)
def test_check_pod_returns_strings_for_any_json(pod: dict[str, Any], level: str) -> None:
    violations = check_pod(pod, level)
    assert isinstance(violations, list) and all(isinstance(v, str) for v in violations)
