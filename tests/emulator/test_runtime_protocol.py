"""The `Runtime` protocol is exactly what the server calls, and every runtime fulfils it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import kdebug_emulator.server
from kdebug_emulator.runtimes.base import Runtime
from kdebug_emulator.runtimes.podman import PodmanRuntime
from kdebug_emulator.runtimes.process import ProcessRuntime
from kdebug_emulator.server import NullRuntime

METHODS = sorted(name for name, value in vars(Runtime).items() if inspect.iscoroutinefunction(value))
ATTRIBUTES = sorted(Runtime.__annotations__)
RUNTIMES = [ProcessRuntime, PodmanRuntime, NullRuntime]


def _defined_by(cls: type, name: str) -> type:
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def _parameters(function: object) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


def test_the_protocol_is_what_the_server_calls_on_its_runtime() -> None:
    tree = ast.parse(Path(kdebug_emulator.server.__file__).read_text(encoding="utf-8"))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and (getattr(node.value, "attr", None) == "runtime" or getattr(node.value, "id", None) == "runtime")
    }
    assert used == {*METHODS, *ATTRIBUTES}


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("method", METHODS)
def test_each_runtime_implements_each_method_with_the_protocols_signature(runtime: type, method: str) -> None:
    # declared as a subclass, so an inherited `...` stub would pass isinstance: check the class's own
    assert _defined_by(runtime, method) is not Runtime
    implementation = getattr(runtime, method)
    assert inspect.iscoroutinefunction(implementation)
    assert _parameters(implementation) == _parameters(getattr(Runtime, method))


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda cls: cls.__name__)
def test_each_runtime_has_a_name_and_takes_a_create_delay(runtime: type) -> None:
    assert isinstance(runtime.name, str) and runtime.name
    assert "create_delay" in inspect.signature(runtime.__init__).parameters


def test_the_runtimes_have_distinct_names() -> None:
    assert sorted(cls.name for cls in RUNTIMES) == ["none", "podman", "process"]
