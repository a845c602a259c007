"""kdebug.lazy: a module is imported on first attribute access, and the proxy never holds stale values."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from kdebug import durations
from kdebug.lazy import LazyModule, lazy_module


def test_the_module_is_imported_on_first_attribute_access() -> None:
    probe = textwrap.dedent(
        """
        import sys
        from kdebug.lazy import lazy_module
        colorsys = lazy_module("colorsys")
        before = "colorsys" in sys.modules
        colorsys.rgb_to_hsv(1.0, 0.0, 0.0)
        print(before, "colorsys" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True"]


def test_an_imported_module_is_returned_itself() -> None:
    assert lazy_module("kdebug.durations") is durations


def test_a_patch_of_the_real_module_is_seen_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = LazyModule("kdebug.durations")
    monkeypatch.setattr(durations, "parse_duration", lambda text, option: 42.0)
    assert proxy.parse_duration("1s", option="--x") == 42.0


def test_setting_through_the_proxy_sets_the_real_module() -> None:
    proxy = LazyModule("kdebug.durations")
    proxy.lazy_probe = 1
    try:
        assert durations.lazy_probe == 1  # type: ignore[attr-defined]
    finally:
        del proxy.lazy_probe
    assert not hasattr(durations, "lazy_probe")


def test_a_missing_module_fails_at_first_use() -> None:
    proxy = lazy_module("kdebug.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        proxy.anything  # noqa: B018


def test_a_missing_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        LazyModule("kdebug.durations").no_such_name  # noqa: B018
