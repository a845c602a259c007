"""plan_session: how the debug container talks to kdebug, from the local terminal and COMMAND."""

from __future__ import annotations

import io

import pytest

from kdebug.debug.request import AttachRequest, LocalStreams, SessionPlan, plan_session
from kdebug.debug.spec import idle_guarded
from kdebug.models import ImageChoice

SHELL = ImageChoice(image="busybox:1.36.1", shell=["sh"])
GUARDED = idle_guarded(["sh"])


def local(stdin_tty: bool, stdout_tty: bool, piped: bool = False) -> LocalStreams:
    return LocalStreams(
        stdin_fd=0,
        stdout=io.BytesIO(),
        stderr=io.BytesIO(),
        stdin_is_tty=stdin_tty,
        stdout_is_tty=stdout_tty,
        stdin_has_data=piped,
    )


@pytest.mark.parametrize(
    ("request_", "streams", "expected"),
    [
        pytest.param(
            AttachRequest("web"),
            local(True, True),
            SessionPlan(GUARDED, tty=True, stdin=True, stdin_once=False, reuse=True, attach=True),
            id="terminal shell reuses, behind the idle watchdog",
        ),
        pytest.param(
            AttachRequest("web", reuse=False),
            local(True, True),
            SessionPlan(GUARDED, tty=True, stdin=True, stdin_once=False, reuse=False, attach=True),
            id="terminal shell with --no-reuse",
        ),
        pytest.param(
            AttachRequest("web", command=["top"], reuse=True),
            local(True, True),
            SessionPlan(["top"], tty=True, stdin=True, stdin_once=False, reuse=False, attach=True),
            id="terminal command never reuses",
        ),
        pytest.param(
            AttachRequest("web", command=["true"]),
            local(False, False),
            SessionPlan(["true"], tty=False, stdin=False, stdin_once=False, reuse=False, attach=False),
            id="script command: logs only",
        ),
        pytest.param(
            AttachRequest("web", command=["cat"]),
            local(False, False, piped=True),
            SessionPlan(["cat"], tty=False, stdin=True, stdin_once=True, reuse=False, attach=True),
            id="piped stdin into command",
        ),
        pytest.param(
            AttachRequest("web"),
            local(False, True, piped=True),
            SessionPlan(["sh"], tty=False, stdin=True, stdin_once=True, reuse=False, attach=True),
            id="piped script into shell",
        ),
        pytest.param(
            AttachRequest("web"),
            local(True, False),
            SessionPlan(["sh"], tty=False, stdin=True, stdin_once=True, reuse=False, attach=True),
            id="stdout redirected: no tty",
        ),
    ],
)
def test_plan_session(request_, streams, expected):
    assert plan_session(request_, streams, SHELL) == expected
