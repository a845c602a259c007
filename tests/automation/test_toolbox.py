"""kdebug.automation.toolbox (pure parts): which toolbox a run may reuse, the toolbox container."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kdebug.automation import toolbox
from kdebug.debug import spec
from tests.fixtures.pods import build_pod, container_status, running

NOW = datetime(2026, 11, 27, 7, 0, 0, tzinfo=UTC)
STARTED = "2026-11-27T06:50:00Z"  # ten minutes before NOW


def wanted(**changes):
    container = spec.build_ephemeral_container(
        name="kdebug-tbx-new00",
        image="busybox:1.36",
        command=toolbox.idle_command(["sh"], 3600),
        target="app",
        session_id="",
        stdin=False,
        tty=False,
    )
    return {**toolbox.build_toolbox(container, 3600), **changes}


def pod_with(container, state=None):
    state = running(STARTED) if state is None else state
    return build_pod(
        typed=False,
        name="web",
        namespace=None,
        image=None,
        ephemeral_containers=[container],
        ephemeral_container_statuses=[container_status(container["name"], state)],
    )


EXISTING = wanted(name="kdebug-tbx-old00")


@pytest.mark.parametrize(
    ("pod", "min_left", "found"),
    [
        (pod_with(EXISTING), 360, "kdebug-tbx-old00"),
        (pod_with({**EXISTING, "image": "alpine:3"}), 360, None),
        (pod_with({**EXISTING, "targetContainerName": "sidecar"}), 360, None),
        (pod_with({**EXISTING, "securityContext": {"privileged": True}}), 360, None),
        (pod_with(EXISTING, {"terminated": {"exitCode": 0}}), 360, None),
        (pod_with(EXISTING), 3000, None),
        (pod_with({**EXISTING, "name": "kdebug-abcde"}), 360, None),
        (pod_with({**EXISTING, "env": []}), 360, None),
    ],
    ids=[
        "same-running",
        "other-image",
        "other-target",
        "other-security-context",
        "terminated",
        "too-little-life-left",
        "not-a-toolbox-name",
        "no-lifetime-env",
    ],
)
def test_find_toolbox(pod, min_left, found):
    assert toolbox.find_toolbox(pod, wanted(), NOW, min_left) == found


def test_toolbox_runs_the_idle_command_and_records_its_lifetime():
    container = wanted()
    assert container["command"] == ["sh", "-c", "sleep 3600"]
    assert toolbox.toolbox_lifetime(container) == 3600


def test_seconds_left_counts_from_started_at():
    assert toolbox.seconds_left(pod_with(EXISTING), "kdebug-tbx-old00", 3600, NOW) == 3000


def test_toolbox_name_avoids_taken_names():
    suffixes = iter(["old00", "fresh"])
    assert toolbox.toolbox_name(pod_with(EXISTING), lambda: next(suffixes)) == "kdebug-tbx-fresh"


def test_exec_query_keeps_argv_order_and_no_tty():
    assert toolbox.exec_query("kdebug-tbx-a", ["sh", "-c", "echo a b"], stdin=False) == [
        ("container", "kdebug-tbx-a"),
        ("stdin", "false"),
        ("stdout", "true"),
        ("stderr", "true"),
        ("tty", "false"),
        ("command", "sh"),
        ("command", "-c"),
        ("command", "echo a b"),
    ]


def test_capped_buffer_keeps_the_first_bytes_and_counts_the_rest():
    buffer = toolbox.CappedBuffer(5)
    buffer.write(b"abc")
    buffer.write(b"defgh")
    assert (buffer.text(), buffer.total, buffer.truncated) == ("abcde", 8, True)


def test_stdout_and_stderr_share_one_cap():
    capture = toolbox.new_capture(6)
    capture.stdout.write(b"1234")
    capture.stderr.write(b"abcd")
    assert (capture.stdout.text(), capture.stderr.text(), capture.truncated) == ("1234", "ab", True)
