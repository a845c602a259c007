"""Shared shells (issue 13, item 10): a second `kdebug attach` of the same pod by another person must
not join the first person's live shell (shared keystrokes, a shared `exit`, an audit record naming one
of them). kdebug takes over only the caller's own running shell (KDEBUG_USER, set when the shell is
added), or another's with --join, which the new session's record names. Two token users against the
demo emulator on real pseudo-terminals; the rule itself as a table on pod dicts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pexpect
import pytest

from kdebug.debug import spec
from kdebug.debug.request import SessionPlan
from kdebug.debug.reuse import reusable_shell
from kdebug.errors import NotFoundError, UsageError
from tests.automation.records import audit_record
from tests.debug.helpers import spawn
from tests.fixtures.kdebug_cli import KDEBUG, env_of, ephemeral_containers, ephemeral_names

BANNER_END = "the target's filesystem is at /proc/1/root"
IMAGE = "busybox:1.36.1"
SHELL_PLAN = SessionPlan(
    spec.idle_guarded(["sh"]), tty=True, stdin=True, stdin_once=False, reuse=True, attach=True
)


@pytest.fixture
def bob_kubeconfig(demo_emulator, kubeconfig, tmp_path: Path) -> Path:
    """A second person: another token user with the same rights as admin."""
    return demo_emulator.write_kubeconfig(tmp_path / "kubeconfig-bob", user="bob", namespace="demo")


def live_shell(kubeconfig: Path, marker: str = "alice") -> pexpect.spawn:
    child = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    child.expect(BANNER_END)
    child.sendline(f"echo {marker[:2]}''{marker[2:]}")
    child.expect(marker)
    return child


def ended(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.wait()
    return child.exitstatus


def newest_session_of(user: str) -> dict:
    done = subprocess.run(
        [KDEBUG, "sessions", "list", "--user", user, "-o", "json", "--limit", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return audit_record(json.loads(done.stdout)["sessions"][0]["session_id"])


def test_another_user_gets_a_shell_of_their_own(demo_emulator, kubeconfig, bob_kubeconfig):
    alice = live_shell(kubeconfig)
    [first] = ephemeral_names(demo_emulator, "demo", "web")
    bob = spawn(KDEBUG, ["attach", "web"], bob_kubeconfig)
    bob.expect(BANNER_END)
    assert "reusing" not in bob.before and "joining" not in bob.before
    bob.sendline("echo owner=$KDEBUG_USER")
    bob.expect("owner=bob")
    bob.sendline("exit 4")
    assert ended(bob) == 4
    names = ephemeral_names(demo_emulator, "demo", "web")
    assert len(names) == 2 and first in names
    alice.sendline("echo sti''ll")  # bob's exit did not end alice's shell
    alice.expect("still")
    alice.sendline("exit")
    assert ended(alice) == 0


def test_join_takes_over_the_live_shell_and_the_record_says_so(demo_emulator, kubeconfig, bob_kubeconfig):
    alice = live_shell(kubeconfig)
    [shell] = ephemeral_containers(demo_emulator, "demo", "web")
    bob = spawn(KDEBUG, ["attach", "web", "--join"], bob_kubeconfig)
    bob.expect("joining admin's live shell")
    bob.expect(BANNER_END)
    bob.sendline("echo sha''red")
    alice.expect("shared")  # the same terminal: alice sees bob's command
    bob.sendline("exit 5")
    assert ended(bob) == 5
    ended(alice)
    assert ephemeral_names(demo_emulator, "demo", "web") == [shell["name"]]
    record = newest_session_of("bob")
    assert record["extra"]["joined"] == env_of(shell)["KDEBUG_SESSION_ID"]
    assert (record["extra"]["joined_user"], record["reused"]) == ("admin", True)


def test_the_same_users_second_attach_reuses_the_live_shell(demo_emulator, kubeconfig):
    alice = live_shell(kubeconfig)
    again = spawn(KDEBUG, ["attach", "web"], kubeconfig)
    again.expect("reusing the running debug container")
    again.expect(BANNER_END)
    again.sendline("exit 2")
    assert ended(again) == 2
    ended(alice)
    assert len(ephemeral_names(demo_emulator, "demo", "web")) == 1


def test_join_with_no_shell_to_join_is_one_line(demo_emulator, kubeconfig):
    child = spawn(KDEBUG, ["attach", "web", "--join"], kubeconfig)
    assert ended(child) == 65
    assert "no running kdebug shell" in child.before and "Traceback" not in child.before
    assert ephemeral_names(demo_emulator, "demo", "web") == []


# -- the rule, on pod dicts ----------------------------------------------------------------------


def shell(name: str, owner: str | None) -> dict:
    env = [{"name": "KDEBUG_SESSION_ID", "value": f"s-{name}"}]
    if owner is not None:
        env.append({"name": "KDEBUG_USER", "value": owner})
    return {
        "name": name,
        "image": IMAGE,
        "targetContainerName": "app",
        "stdin": True,
        "tty": True,
        "command": ["sh"],
        "env": env,
    }


def pod_with(*shells: dict) -> dict:
    running = [{"name": s["name"], "state": {"running": {}}} for s in shells]
    return {"spec": {"ephemeralContainers": list(shells)}, "status": {"ephemeralContainerStatuses": running}}


@pytest.mark.parametrize(
    ("shells", "user", "join", "expected"),
    [
        pytest.param(
            [shell("kdebug-a", "alice")], "alice", False, ("kdebug-a", False), id="own shell reused"
        ),
        pytest.param([shell("kdebug-a", "alice")], "bob", False, None, id="another's shell: a new one"),
        pytest.param(
            [shell("kdebug-a", "alice")], "bob", True, ("kdebug-a", True), id="another's with --join"
        ),
        pytest.param([shell("kdebug-o", None)], "alice", False, None, id="unowned (older kdebug): a new one"),
        pytest.param([shell("kdebug-a", "alice")], None, False, None, id="caller unknown: a new one"),
        pytest.param(
            [shell("kdebug-a", "alice"), shell("kdebug-b", "bob")],
            "bob",
            True,
            ("kdebug-b", False),
            id="--join still prefers one's own",
        ),
    ],
)
def test_reuse_rule(shells, user, join, expected):
    found = reusable_shell(pod_with(*shells), IMAGE, "app", SHELL_PLAN, user, join)
    assert (None if found is None else (found.container, found.joined)) == expected


def test_join_with_nothing_running_is_not_found():
    with pytest.raises(NotFoundError):
        reusable_shell(pod_with(), IMAGE, "app", SHELL_PLAN, "bob", join=True)


def test_join_off_a_terminal_is_a_usage_error():
    piped = SessionPlan(["sh"], tty=False, stdin=True, stdin_once=True, reuse=False, attach=True)
    with pytest.raises(UsageError):
        reusable_shell(pod_with(shell("kdebug-a", "alice")), IMAGE, "app", piped, "bob", join=True)
