"""Hostile kubeconfig extensions and config files (issue 13, items 4 and 11).

A kubeconfig is often handed out by others: its `kdebug.dev/config` extension may point kdebug at the
cluster's registries (mirrors, registry settings) and nothing else. Before the fix it could turn
recording off, move the store, swap the catalog and the allowlist. A config file is the user's own,
but a damaged one (binary, nested, the wrong shapes, huge) must end as one usage line naming the
file, never a traceback. Each case runs `kdebug attach` through the real entry point against the demo
emulator; refused cases send no request at all.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdebug.errors import ExitCode
from kdebug.sessions.store import SessionQuery, SessionStore, default_db_path
from kdebug_emulator import Emulator
from tests.fixtures.kdebug_cli import all_running, ephemeral_containers

SHIPPED_BUSYBOX = "docker.io/library/busybox:1.36.1"
EVIL = "evil.example/toolbox:1"
MIRROR = "mirror.example/distroless"


def hostile_extension(elsewhere: Path) -> dict[str, Any]:
    return {
        "mirrors": [{"from": "gcr.io/distroless", "to": MIRROR}],
        "registry": {"timeout": 3},
        "sessions": {"path": str(elsewhere), "allow_no_record": True},
        "catalog": {"busybox": {"image": EVIL}},
        "allowed_images": ["evil.example/*"],
        "debug_image": EVIL,
    }


@pytest.fixture
def hostile_kubeconfig(demo_emulator: Emulator, tmp_path: Path) -> Path:
    path = tmp_path / "handed-out-kubeconfig"
    extension = hostile_extension(tmp_path / "elsewhere" / "sessions.db")
    demo_emulator.write_kubeconfig(path, namespace="demo", extensions={"kdebug.dev/config": extension})
    demo_emulator.wait_for(lambda: all_running(demo_emulator, "demo"), timeout=15)
    return path


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if "warning" in line]


def test_a_kubeconfig_cannot_change_the_catalog_allowlist_or_store(
    demo_emulator: Emulator, hostile_kubeconfig: Path, run_kdebug, tmp_path: Path
) -> None:
    result = run_kdebug("attach", "web", "--kubeconfig", str(hostile_kubeconfig), "--", "echo", "ok")
    assert (result.code, result.out.strip()) == (0, "ok"), result.err
    [warning] = warnings_in(result.err)
    assert "allowed_images, catalog, debug_image, sessions" in warning
    assert "kdebug.dev/config" in warning and "mirrors and registry" in warning
    [debug] = ephemeral_containers(demo_emulator, "demo", "web")
    assert debug["image"] == SHIPPED_BUSYBOX  # the shipped catalog, and no allowlist refused it
    assert not (tmp_path / "elsewhere").exists()
    with SessionStore(default_db_path(), create=False) as store:
        [record] = store.list_sessions(SessionQuery())
    assert record["pod"] == "web"


def test_a_kubeconfig_cannot_turn_recording_off(
    demo_emulator: Emulator, hostile_kubeconfig: Path, run_kdebug
):
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--no-record", "--kubeconfig", str(hostile_kubeconfig), "--", "true")
    assert result.code == ExitCode.USAGE
    assert "recording cannot be turned off" in result.err
    assert demo_emulator.requests[before:] == []


def test_the_users_own_config_still_applies(
    hostile_kubeconfig: Path, run_kdebug, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("sessions: {allow_no_record: true}\n")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))
    result = run_kdebug("attach", "web", "--no-record", "--kubeconfig", str(hostile_kubeconfig), "--", "true")
    assert result.code == 0, result.err
    assert len(warnings_in(result.err)) == 1


def test_mirrors_from_the_kubeconfig_still_apply(hostile_kubeconfig: Path, run_kdebug) -> None:
    result = run_kdebug(
        "inspect", "api", "--no-registry", "-o", "json", "--kubeconfig", str(hostile_kubeconfig)
    )
    assert result.code == 0, result.err
    [api] = [c for c in result.json()["containers"] if c["target"]]
    assert api["debugImage"]["image"].startswith(f"{MIRROR}/base-debian12:debug")


def test_a_kubeconfig_with_only_mirrors_and_registry_gives_no_warning(
    demo_emulator: Emulator, tmp_path: Path, run_kdebug
) -> None:
    path = tmp_path / "kubeconfig"
    extension = {
        "mirrors": [{"from": "gcr.io/distroless", "to": MIRROR}],
        "registry": {"insecure": ["x:5000"]},
    }
    demo_emulator.write_kubeconfig(path, namespace="demo", extensions={"kdebug.dev/config": extension})
    result = run_kdebug("inspect", "api", "--no-registry", "-o", "json", "--kubeconfig", str(path))
    assert result.code == 0, result.err
    assert warnings_in(result.err) == []


# -- damaged config files: one usage line naming the file, no request ------------------------------

NESTED_LISTS = "a: " + "[" * 10_000 + "]" * 10_000 + "\n"
NESTED_MAPPINGS = "a: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n"
MANY_MIRRORS = "mirrors:\n" + "- {from: a.example/x, to: b.example/x}\n" * 20_000
SHORT_MIRRORS = "mirrors: [" + "a, " * 100_000 + "a]\n"

CONFIG_FILES = [
    pytest.param("mirrors: gcr.io/distroless\n", "mirrors", id="mirrors-a-string"),
    pytest.param("mirrors: [gcr.io/distroless]\n", "mirrors", id="mirrors-entry-a-string"),
    pytest.param("mirrors: [{from: gcr.io/distroless}]\n", "mirrors", id="mirrors-without-to"),
    pytest.param("mirrors: [{to: m.example/d}]\n", "mirrors", id="mirrors-without-from"),
    pytest.param("mirrors: [{from: 1, to: 2}]\n", "mirrors", id="mirrors-numbers"),
    pytest.param("mirrors: [{from: [a], to: {b: c}}]\n", "mirrors", id="mirrors-collections"),
    pytest.param("mirrors: {gcr.io: 5}\n", "mirrors", id="mirrors-mapping-number"),
    pytest.param("mirrors: {gcr.io: null}\n", "mirrors", id="mirrors-mapping-null"),
    pytest.param("mirrors: 7\n", "mirrors", id="mirrors-a-number"),
    pytest.param(SHORT_MIRRORS, "mirrors", id="mirrors-100k-entries"),
    pytest.param(MANY_MIRRORS, "mirrors", id="mirrors-20k-rules"),
    pytest.param("registry: [a]\n", "registry", id="registry-a-list"),
    pytest.param("registry: {insecure: 5}\n", "registry", id="registry-insecure-number"),
    pytest.param("registry: {timeout: soon}\n", "registry", id="registry-timeout-word"),
    pytest.param("registry: {timeout: .nan}\n", "registry", id="registry-timeout-nan"),
    pytest.param("registry: {platform: [linux]}\n", "registry", id="registry-platform-list"),
    pytest.param("allowed_images: 5\n", "allowed_images", id="allowlist-number"),
    pytest.param("catalog: [1]\n", "catalog", id="catalog-a-list"),
    pytest.param("catalog: {families: [{name: x, strategy: image, image: 5}]}\n", "catalog", id="family-bad"),
    pytest.param(bytes(random.Random(13).randrange(256) for _ in range(4096)), "UTF-8", id="random-bytes"),
    pytest.param(b"mirrors: []\n\x00\n", "YAML", id="nul-byte"),
    pytest.param(b"mirrors: [\xff\xfe]\n", "UTF-8", id="invalid-utf8"),
    pytest.param(NESTED_LISTS, "YAML", id="nested-lists-10k"),
    pytest.param(NESTED_MAPPINGS, "YAML", id="nested-mappings-10k"),
    pytest.param("- mirrors\n- registry\n", "mapping", id="top-level-list"),
    pytest.param("just a scalar\n", "mapping", id="top-level-scalar"),
    pytest.param("# " + "x" * (2 * 1024 * 1024) + "\n", "1 MiB", id="2-mib"),
    pytest.param("a: !!python/object:os.system {}\n", "YAML", id="python-tag"),
]


@pytest.mark.parametrize(("content", "named"), CONFIG_FILES)
def test_a_damaged_config_file_is_one_usage_line(
    demo_emulator: Emulator,
    kubeconfig: Path,
    run_kdebug,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str | bytes,
    named: str,
) -> None:
    config = tmp_path / "config.yaml"
    if isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content, encoding="utf-8")
    monkeypatch.setenv("KDEBUG_CONFIG", str(config))
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.USAGE, result.err
    [line] = result.err.splitlines()
    assert line.startswith(f"error: config file {config}") and named in line, line
    assert len(line) < 400
    assert demo_emulator.requests[before:] == []


def test_an_endless_config_file_is_refused_at_the_size_cap(
    demo_emulator: Emulator, kubeconfig: Path, run_kdebug, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KDEBUG_CONFIG", "/dev/zero")  # before the cap: read until memory ran out
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == ExitCode.USAGE
    assert result.err == "error: config file /dev/zero is larger than 1 MiB\n"


KUBECONFIG_EXTENSIONS = [
    pytest.param({"mirrors": "gcr.io/distroless"}, id="mirrors-a-string"),
    pytest.param({"mirrors": [{"from": "gcr.io"}]}, id="mirrors-without-to"),
    pytest.param({"mirrors": [{"from": 1, "to": None}]}, id="mirrors-not-strings"),
    pytest.param({"registry": ["a"]}, id="registry-a-list"),
    pytest.param({"registry": {"insecure": {"a": 1}}}, id="registry-insecure-mapping"),
]


@pytest.mark.parametrize("extension", KUBECONFIG_EXTENSIONS)
def test_a_damaged_kubeconfig_extension_is_one_usage_line(
    demo_emulator: Emulator, tmp_path: Path, run_kdebug, extension: dict[str, Any]
) -> None:
    path = tmp_path / "kubeconfig"
    demo_emulator.write_kubeconfig(path, namespace="demo", extensions={"kdebug.dev/config": extension})
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--kubeconfig", str(path), "--", "true")
    assert result.code == ExitCode.USAGE, result.err
    [line] = result.err.splitlines()
    assert line.startswith(f"error: kubeconfig {path}: kdebug.dev/config: "), line
    assert demo_emulator.requests[before:] == []


def test_a_deeply_nested_kubeconfig_is_one_line(demo_emulator: Emulator, tmp_path: Path, run_kdebug) -> None:
    path = tmp_path / "kubeconfig"
    demo_emulator.write_kubeconfig(path, namespace="demo")
    document = yaml.safe_load(path.read_text())
    nested: Any = "x"
    for _ in range(900):  # under libyaml's own limit (1000): parsed, then copied by the file cache
        nested = [nested]
    document["preferences"] = {"deep": nested}
    path.write_text(json.dumps(document))
    before = len(demo_emulator.requests)
    result = run_kdebug("attach", "web", "--kubeconfig", str(path), "--", "true")
    assert result.code == ExitCode.USAGE, result.err
    [line] = result.err.splitlines()
    assert line.startswith(f"error: kubeconfig {path}") and "nested" in line, line
    assert demo_emulator.requests[before:] == []


def test_ignored_key_names_are_shown_terminal_safe(
    demo_emulator: Emulator, tmp_path: Path, run_kdebug
) -> None:
    path = tmp_path / "kubeconfig"
    extension = {"\x1b]52;c;cHduZWQ=\x07": 1, **{f"key{n}": n for n in range(500)}}
    demo_emulator.write_kubeconfig(path, namespace="demo", extensions={"kdebug.dev/config": extension})
    result = run_kdebug("inspect", "api", "--no-registry", "-o", "json", "--kubeconfig", str(path))
    assert result.code == 0, result.err
    [warning] = warnings_in(result.err)
    assert "\\x1b]52" in warning and "\x1b" not in result.err and "and 493 more" in warning
