"""Hostile runbook files (issue 13, items 7 and 8): a shared runbook that raises the debug container's
privileges or picks its own image, a regex that backtracks catastrophically, an 11 MB file and deeply
nested YAML. Each runs the real CLI against the demo emulator (a real socket); a refused file must
send no mutating request at all.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kdebug.automation.runbook import MAX_RUNBOOK_BYTES, MAX_YAML_DEPTH
from kdebug.errors import ExitCode
from tests.automation.records import audit_record
from tests.fixtures.cluster import mutating_requests

pytestmark = pytest.mark.usefixtures("isolated_config")

CATALOG_BUSYBOX = "docker.io/library/busybox:1.36.1"


@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text("sessions: {}\n")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))
    return config


@pytest.fixture
def demo(demo_emulator, kubeconfig, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return demo_emulator


def book(tmp_path: Path, body: str, name: str = "shared.yaml") -> str:
    path = tmp_path / name
    path.write_text("name: shared\ntarget: web\nnamespace: demo\n" + body)
    return str(path)


ONE_STEP = "steps:\n  - name: hello\n    run: echo hello\n"


# -- item 7: privileges and images asked for by the file -----------------------------------------


@pytest.mark.parametrize(
    ("header", "flag"),
    [
        pytest.param("profile: sysadmin\n", "--allow-profile sysadmin", id="sysadmin"),
        pytest.param("profile: netadmin\n", "--allow-profile netadmin", id="netadmin"),
        pytest.param("profile: general\n", "--allow-profile general", id="general-adds-sys-ptrace"),
        pytest.param("image: evil.example/toolbox:1\n", "--allow-image evil.example/toolbox:1", id="image"),
    ],
)
def test_a_file_that_raises_privileges_is_refused_without_the_flag(demo, run_kdebug, tmp_path, header, flag):
    before = len(demo.requests)
    result = run_kdebug("runbook", "run", book(tmp_path, header + ONE_STEP), "-o", "json")
    assert result.code == ExitCode.USAGE
    assert flag in result.err and "shared.yaml:4:" in result.err
    assert len([line for line in result.err.splitlines() if line.strip()]) <= 2  # error + hint
    assert mutating_requests(demo, before) == []


def test_sysadmin_with_the_flag_is_announced_and_recorded(demo, run_kdebug, tmp_path):
    path = book(tmp_path, "profile: sysadmin\n" + ONE_STEP)
    result = run_kdebug("runbook", "run", path, "--allow-profile", "sysadmin", "-o", "json")
    assert result.code == 0, result.err
    announced = [line for line in result.err.splitlines() if "sysadmin" in line]
    assert len(announced) == 1 and "--allow-profile sysadmin" in announced[0]
    toolbox = demo.get("pods", "demo", "web")["spec"]["ephemeralContainers"][-1]
    assert toolbox["securityContext"].get("privileged") is True
    record = audit_record(result.json()["pods"][0]["steps"][0]["session_id"])
    assert record["extra"]["runbook_allowed"] == ["profile sysadmin (--allow-profile sysadmin)"]


def test_an_image_with_escape_sequences_reaches_the_terminal_inert(demo, run_kdebug, tmp_path):
    """An OSC 52 (clipboard write) in the file's image: refused as a reference, and inert on stderr."""
    image = "evil.example/x:1\\e]52;c;ZWNobyBwd25lZA==\\a"  # YAML double-quoted escapes
    path = book(tmp_path, f'image: "{image}"\n' + ONE_STEP)
    result = run_kdebug(
        "runbook", "run", path, "--allow-image", "evil.example/x:1\x1b]52;c;ZWNobyBwd25lZA==\x07"
    )
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert (result.code, len(lines), "shared.yaml:4: invalid image reference" in lines[0]) == (64, 1, True)
    assert "\x1b" not in result.err and "\x07" not in result.err


def test_the_wrong_flag_does_not_allow_another_profile(demo, run_kdebug, tmp_path):
    before = len(demo.requests)
    path = book(tmp_path, "profile: sysadmin\n" + ONE_STEP)
    result = run_kdebug("runbook", "run", path, "--allow-profile", "netadmin")
    assert (result.code, "--allow-profile sysadmin" in result.err) == (ExitCode.USAGE, True)
    assert mutating_requests(demo, before) == []


@pytest.mark.parametrize(
    "header",
    ["profile: restricted\n", "profile: baseline\n", "profile: auto\n", ""],
    ids=["restricted", "baseline", "auto", "no-profile"],
)
def test_profiles_that_raise_nothing_need_no_flag(demo, run_kdebug, tmp_path, header):
    result = run_kdebug("runbook", "run", book(tmp_path, header + ONE_STEP), "-o", "json")
    assert result.code == 0, result.err
    assert "--allow-" not in result.err


def test_the_catalogs_own_busybox_needs_no_flag(demo, run_kdebug, tmp_path):
    result = run_kdebug("runbook", "run", book(tmp_path, f"image: {CATALOG_BUSYBOX}\n" + ONE_STEP))
    assert result.code == 0, result.err


def test_an_image_given_on_the_command_line_replaces_the_files(demo, run_kdebug, tmp_path):
    path = book(tmp_path, "image: evil.example/toolbox:1\n" + ONE_STEP)
    result = run_kdebug("runbook", "run", path, "--image", CATALOG_BUSYBOX)
    assert result.code == 0, result.err


# -- item 8: resource limits ---------------------------------------------------------------------


def test_a_catastrophic_expect_ends_in_bounded_time(demo, run_kdebug, tmp_path):
    """`^(a+)+$` against 40 a's and a b backtracks for hours in Python's re."""
    output = "a" * 40 + "b"
    body = f"steps:\n  - name: redos\n    run: printf '{output}'\n    expect: '^(a+)+$'\n"
    started = time.monotonic()
    result = run_kdebug("runbook", "run", book(tmp_path, body), "-o", "json")
    assert time.monotonic() - started < 40
    step = result.json()["pods"][0]["steps"][0]
    assert (result.code, step["status"], step["error"]["kind"]) == (ExitCode.SOME_FAILED, "failed", "expect")
    assert "took longer than" in step["error"]["message"]


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("a{4294967296}", id="repeat-count-overflow"),
        pytest.param("(" * 1000 + ")" * 1000, id="groups-nested-1000-deep"),
    ],
)
def test_an_expect_that_cannot_compile_is_one_line_with_its_line(run_kdebug, tmp_path, pattern):
    body = f"steps:\n  - name: s\n    run: echo\n    expect: '{pattern}'\n"
    result = run_kdebug("runbook", "validate", book(tmp_path, body))
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert (result.code, len(lines)) == (ExitCode.USAGE, 1), result.err
    assert "shared.yaml:7:" in lines[0] and "not a valid regular expression" in lines[0]


def test_expect_still_matches_normal_output(demo, run_kdebug, tmp_path):
    body = "steps:\n  - name: ok\n    run: echo hello world\n    expect: '^hello (\\w+)$'\n"
    result = run_kdebug("runbook", "run", book(tmp_path, body), "-o", "json")
    assert (result.code, result.json()["pods"][0]["steps"][0]["status"]) == (0, "ok")


def test_an_oversized_runbook_is_refused_before_parsing(run_kdebug, tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("name: huge\nsteps:\n" + "  - {name: s, run: x}\n" * (11 * 1024 * 1024 // 22))
    started = time.monotonic()
    result = run_kdebug("runbook", "validate", str(path))
    assert time.monotonic() - started < 5
    assert result.code == ExitCode.USAGE
    assert f"over the {MAX_RUNBOOK_BYTES} byte limit" in result.err and "huge.yaml" in result.err


@pytest.mark.parametrize("opener", ["[", "{a: "], ids=["sequences", "mappings"])
def test_deeply_nested_yaml_is_one_line_with_its_line(run_kdebug, tmp_path, opener):
    closer = "]" if opener == "[" else "}"
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nsteps:\n  - name: s\n    run: " + opener * 5000 + "x" + closer * 5000 + "\n")
    result = run_kdebug("runbook", "validate", str(path))
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert (result.code, len(lines)) == (ExitCode.USAGE, 1), result.err
    assert "deep.yaml:4:" in lines[0] and f"deeper than {MAX_YAML_DEPTH}" in lines[0]


def test_deep_nesting_refused_by_runbook_run_sends_nothing(demo, run_kdebug, tmp_path):
    before = len(demo.requests)
    path = book(tmp_path, "steps:\n  - name: s\n    run: " + "[" * 3000 + "]" * 3000 + "\n")
    result = run_kdebug("runbook", "run", path)
    assert (result.code, "Traceback" in result.err) == (ExitCode.USAGE, False)
    assert mutating_requests(demo, before) == []
