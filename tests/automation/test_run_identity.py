"""`kdebug run` and `kdebug runbook run` record who ran them as `attach` does (issue 13, item 6): the
Kubernetes user (from a SelfSubjectReview), the API server and the kubeconfig context, in every record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RUNBOOK = """\
name: identity
target: web
namespace: demo
steps:
  - name: first
    run: ["true"]
  - name: second
    run: ["true"]
"""


def recorded_sessions(run_kdebug: Any) -> list[dict[str, Any]]:
    listed = run_kdebug("sessions", "list", "-o", "json").json()["sessions"]
    return [
        run_kdebug("sessions", "show", item["session_id"], "-o", "json").json()["session"] for item in listed
    ]


def assert_identity(session: dict[str, Any], demo_emulator: Any) -> None:
    assert (
        session["kube_user"] == "admin"
    )  # the demo kubeconfig's user, as the emulator's SelfSubjectReview says, session
    assert session["kube_user_source"] == "selfsubjectreview", session
    assert session["server"] == demo_emulator.url, session
    assert session["context"], session


def test_run_records_the_kubernetes_identity(demo_emulator: Any, kubeconfig: Path, run_kdebug: Any) -> None:
    result = run_kdebug("run", "web", "-n", "demo", "-o", "json", "--", "true")
    assert result.code == 0, result.err
    (session,) = recorded_sessions(run_kdebug)
    assert_identity(session, demo_emulator)


def test_every_runbook_step_records_the_kubernetes_identity(
    demo_emulator: Any, kubeconfig: Path, run_kdebug: Any, tmp_path: Path
) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(RUNBOOK)
    result = run_kdebug("runbook", "run", str(book), "-o", "json")
    assert result.code == 0, result.err
    sessions = recorded_sessions(run_kdebug)
    assert len(sessions) == 2
    for session in sessions:
        assert_identity(session, demo_emulator)
