import itertools

import pytest

from kdebug.debug import spec
from tests.fixtures.pods import build_pod, terminated


def make_pod(containers=("app",), init=(), ephemeral=(), statuses=()):
    return build_pod(
        typed=False,
        name="web",
        namespace=None,
        image=None,
        containers=containers,
        init_containers=init,
        ephemeral_containers=ephemeral,
        ephemeral_container_statuses=statuses,
    )


def suffixes(*values):
    it = iter(values)
    return lambda: next(it)


BASE = {"name": "kdebug-abcde", "image": "busybox:1.36.1", "command": ["sh"], "targetContainerName": "app"}
ENV = [
    {"name": "KDEBUG_SESSION_ID", "value": "s-1"},
    {"name": "KDEBUG_TARGET_ROOT", "value": "/proc/1/root"},
    {"name": "KDEBUG_IDLE_TIMEOUT", "value": "3600"},
    {"name": "KDEBUG_IDLE_CHECK", "value": "30"},
    {"name": "TMOUT", "value": "3600"},
]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"stdin": True, "tty": True},
            {**BASE, "stdin": True, "tty": True, "terminationMessagePolicy": "File", "env": ENV},
            id="interactive shell",
        ),
        pytest.param(
            {"stdin": True, "tty": False, "stdin_once": True},
            {
                **BASE,
                "stdin": True,
                "tty": False,
                "terminationMessagePolicy": "File",
                "env": ENV,
                "stdinOnce": True,
            },
            id="piped stdin closes after first attach",
        ),
        pytest.param(
            {"stdin": False, "tty": False, "stdin_once": True},
            {**BASE, "stdin": False, "tty": False, "terminationMessagePolicy": "File", "env": ENV},
            id="no stdin means no stdinOnce",
        ),
        pytest.param(
            {"stdin": True, "tty": True, "run_as_user": 65532, "run_as_group": 65532},
            {
                **BASE,
                "stdin": True,
                "tty": True,
                "terminationMessagePolicy": "File",
                "env": ENV,
                "securityContext": {"runAsUser": 65532, "runAsGroup": 65532},
            },
            id="runs as the target's non-root user",
        ),
        pytest.param(
            {"stdin": True, "tty": True, "idle_timeout_s": 600},
            {
                **BASE,
                "stdin": True,
                "tty": True,
                "terminationMessagePolicy": "File",
                "env": [
                    *ENV[:2],
                    {"name": "KDEBUG_IDLE_TIMEOUT", "value": "600"},
                    {"name": "KDEBUG_IDLE_CHECK", "value": "30"},
                    {"name": "TMOUT", "value": "600"},
                ],
            },
            id="idle timeout for watchdog and TMOUT",
        ),
    ],
)
def test_build_ephemeral_container(options, expected):
    built = spec.build_ephemeral_container(
        name="kdebug-abcde", image="busybox:1.36.1", command=["sh"], target="app", session_id="s-1", **options
    )
    assert built == expected


def test_build_keeps_user_command():
    built = spec.build_ephemeral_container(
        name="kdebug-x",
        image="i",
        command=["sh", "-c", "exit 4"],
        target="app",
        session_id="s",
        stdin=False,
        tty=False,
    )
    assert built["command"] == ["sh", "-c", "exit 4"]


def test_patch_body_is_strategic_merge_of_one_container():
    container = {"name": "kdebug-abcde"}
    assert spec.ephemeral_patch(container) == {"spec": {"ephemeralContainers": [container]}}
    assert spec.PATCH_CONTENT_TYPE == "application/strategic-merge-patch+json"


@pytest.mark.parametrize(
    ("pod", "rolls", "name"),
    [
        pytest.param(make_pod(), ["aaaaa"], "kdebug-aaaaa", id="first roll free"),
        pytest.param(
            make_pod(containers=("kdebug-aaaaa",)),
            ["aaaaa", "bbbbb"],
            "kdebug-bbbbb",
            id="clash with a container",
        ),
        pytest.param(
            make_pod(init=("kdebug-aaaaa",)),
            ["aaaaa", "ccccc"],
            "kdebug-ccccc",
            id="clash with an init container",
        ),
        pytest.param(
            make_pod(ephemeral=[{"name": "kdebug-aaaaa"}, {"name": "kdebug-bbbbb"}]),
            ["aaaaa", "bbbbb", "ddddd"],
            "kdebug-ddddd",
            id="clash with ephemeral containers",
        ),
    ],
)
def test_unique_container_name_rerolls_until_free(pod, rolls, name):
    assert spec.unique_container_name(pod, suffixes(*rolls)) == name


def test_unique_container_name_gives_up_on_a_stuck_source():
    with pytest.raises(RuntimeError):
        spec.unique_container_name(make_pod(containers=("kdebug-aaaaa",)), itertools.repeat("aaaaa").__next__)


SHELL = {
    "name": "kdebug-old01",
    "image": "busybox:1.36.1",
    "targetContainerName": "app",
    "command": ["sh"],
    "stdin": True,
    "tty": True,
}
RUNNING = {"name": "kdebug-old01", "state": {"running": {}}}


@pytest.mark.parametrize(
    ("ephemeral", "statuses", "found"),
    [
        pytest.param([SHELL], [RUNNING], "kdebug-old01", id="running shell same image and target"),
        pytest.param(
            [SHELL],
            [{"name": "kdebug-old01", "state": {"terminated": {"exitCode": 0}}}],
            None,
            id="terminated shell",
        ),
        pytest.param([{**SHELL, "image": "other"}], [RUNNING], None, id="other image"),
        pytest.param([{**SHELL, "targetContainerName": "sidecar"}], [RUNNING], None, id="other target"),
        pytest.param([{**SHELL, "command": ["sh", "-c", "sleep 9"]}], [RUNNING], None, id="has a command"),
        pytest.param(
            [{**SHELL, "name": "debugger-old01"}],
            [{**RUNNING, "name": "debugger-old01"}],
            None,
            id="not kdebug's",
        ),
        pytest.param([{**SHELL, "tty": False, "stdinOnce": True}], [RUNNING], None, id="non-interactive"),
    ],
)
def test_find_reusable_container(ephemeral, statuses, found):
    pod = make_pod(ephemeral=ephemeral, statuses=statuses)
    assert spec.find_reusable_container(pod, "busybox:1.36.1", "app") == found


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param({"running": {}}, spec.StartupState("running"), id="running"),
        pytest.param(
            {"waiting": {"reason": "ContainerCreating"}},
            spec.StartupState("waiting", "ContainerCreating"),
            id="creating",
        ),
        pytest.param(
            {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}},
            spec.StartupState("failed", "ImagePullBackOff", "Back-off"),
            id="pull back-off",
        ),
        pytest.param(
            {"waiting": {"reason": "CreateContainerConfigError", "message": "m"}},
            spec.StartupState("failed", "CreateContainerConfigError", "m"),
            id="config error",
        ),
        pytest.param(
            terminated("Error", 4),
            spec.StartupState("terminated", "Error", "", 4),
            id="terminated",
        ),
        pytest.param(None, spec.StartupState("waiting", "Pending"), id="no status yet"),
    ],
)
def test_startup_state(state, expected):
    statuses = [] if state is None else [{"name": "kdebug-x", "state": state}]
    assert spec.startup_state(make_pod(statuses=statuses), "kdebug-x") == expected


def test_pull_failure_hint_names_image_and_policy():
    pod = make_pod(ephemeral=[{"name": "kdebug-x", "image": "nope:1", "imagePullPolicy": "Always"}])
    hint = spec.start_failure_hint(pod, "kdebug-x", "ErrImagePull")
    assert "nope:1" in hint and "imagePullPolicy Always" in hint


def test_no_hint_for_other_failures():
    assert spec.start_failure_hint(make_pod(), "kdebug-x", "CreateContainerError") is None


@pytest.mark.parametrize(
    ("timeout", "interval"),
    [
        pytest.param(3600, 30, id="capped at 30s"),
        pytest.param(60, 15, id="a quarter"),
        pytest.param(2, 1, id="at least 1s"),
    ],
)
def test_idle_check_interval(timeout, interval):
    assert spec.idle_check_interval(timeout) == interval


def test_idle_guard_runs_the_shell_with_the_images_own_shell():
    command = spec.idle_guarded(["/busybox/sh"])
    assert command[0] == "/busybox/sh" and command[1] == "-c"
    assert command[3:] == ["kdebug-idle-guard", "/busybox/sh"]


def test_guarded_shell_is_reusable():
    guarded = {**SHELL, "command": spec.idle_guarded(["sh"])}
    pod = make_pod(ephemeral=[guarded], statuses=[RUNNING])
    assert spec.find_reusable_container(pod, "busybox:1.36.1", "app") == "kdebug-old01"


def test_a_shell_behind_an_older_version_of_the_guard_is_still_reusable():
    older = {**SHELL, "command": ["sh", "-c", 'exec "$@"', spec.IDLE_GUARD_NAME, "sh"]}
    pod = make_pod(ephemeral=[older], statuses=[RUNNING])
    assert spec.find_reusable_container(pod, "busybox:1.36.1", "app") == "kdebug-old01"
