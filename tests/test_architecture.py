"""The dependency rule (docs/architecture.md, "Rules the code keeps"), held by the import graph.

- The product (`kdebug/`) never imports the emulator or the demo extra's libraries (aiohttp,
  cryptography): statically, save the one importlib string in kdebug/cli/demo.py, and at runtime,
  importing every module under kdebug/ in a fresh interpreter.
- A pure module (docstring starting with PURE) imports, at its top level, only the standard library,
  kdebug.models, kdebug.errors and other pure modules, and loading it loads none of the client, CLI or
  YAML libraries. This generalises tests/images/test_purity.py, tests/sessions/test_purity.py and the
  purity test in tests/security/test_users.py to every module that calls itself pure; those name a few
  modules without the PURE docstring as well (kdebug.images.layers, kdebug.sessions.recorder).
- `kdebug demo` without the demo extra fails with kdebug's one error (and its hint), not a traceback.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdebug.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kdebug"
DEMO_EXTRA = ("kdebug_emulator", "aiohttp", "cryptography")
HEAVY = ("kubernetes", "typer", "rich", "aiohttp", "yaml")
ALLOWED_IMPORTLIB = {("kdebug/cli/demo.py", "kdebug_emulator.launcher")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in SOURCES.items()}
PURE = sorted(name for name, tree in TREES.items() if (ast.get_docstring(tree) or "").startswith("PURE"))


def imported_modules(nodes: list[ast.stmt] | ast.Module) -> set[str]:
    """Every module an import statement among `nodes` (a whole tree, or a module's top-level body) names."""
    statements = ast.walk(nodes) if isinstance(nodes, ast.Module) else nodes
    found: set[str] = set()
    for node in statements:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            # `from kdebug.security import users` imports the module kdebug.security.users
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in SOURCES}
    return found


def importlib_strings(tree: ast.Module) -> set[str]:
    """Module names given as string constants to importlib.import_module, __import__ or kdebug.lazy_module."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__", "lazy_module") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def run_python(code: str, *, pythonpath: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in [*(pythonpath or []), ROOT])}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
    )


# --- the product never loads the emulator or the demo extra ----------------------------------------------


def test_no_product_module_imports_the_emulator_or_the_demo_extra() -> None:
    offenders = [
        f"{SOURCES[name].relative_to(ROOT)} imports {imported}"
        for name, tree in TREES.items()
        for imported in sorted(imported_modules(tree))
        if top(imported) in DEMO_EXTRA
    ]
    assert offenders == []


def test_only_the_demo_command_loads_the_emulator_by_name() -> None:
    loaded = {
        (str(SOURCES[name].relative_to(ROOT)), target)
        for name, tree in TREES.items()
        for target in importlib_strings(tree)
        if top(target) in DEMO_EXTRA
    }
    assert loaded == ALLOWED_IMPORTLIB


def test_importing_every_product_module_loads_neither_the_emulator_nor_the_demo_extra() -> None:
    # __main__ would run the CLI; everything else imports without side effects
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import kdebug\n"
        "names = [m.name for m in pkgutil.walk_packages(kdebug.__path__, 'kdebug.')"
        " if m.name != 'kdebug.__main__']\n"
        "for name in names: importlib.import_module(name)\n"
        f"print(json.dumps({{'imported': names, 'loaded': sorted(m for m in {DEMO_EXTRA!r}"
        " if m in sys.modules)}))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["loaded"] == []
    assert sorted(report["imported"]) == sorted(set(SOURCES) - {"kdebug", "kdebug.__main__"})


# --- pure modules ---------------------------------------------------------------------------------------


def test_some_modules_call_themselves_pure() -> None:
    assert len(PURE) >= 10  # the docstring convention is what the tests below find pure modules by


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_only_the_stdlib_models_errors_and_pure_modules(module: str) -> None:
    allowed = {"kdebug.models", "kdebug.errors", *PURE}
    packages = {name for name, path in SOURCES.items() if path.name == "__init__.py"}
    body = TREES[module].body  # imports inside functions load only when called (yaml for parsing)
    wrong = sorted(
        imported
        for imported in imported_modules(body)
        if top(imported) not in sys.stdlib_module_names and imported not in allowed | packages
    )
    assert wrong == []


@pytest.mark.parametrize("module", PURE)
def test_loading_a_pure_module_loads_no_client_cli_or_yaml_library(module: str) -> None:
    result = run_python(f"import sys, {module}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- kdebug demo without the extra -------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["aiohttp", "cryptography"])
def test_demo_without_the_extra_names_it_in_one_error(missing: str, tmp_path: Path) -> None:
    stub = tmp_path / "stubs" / missing
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{missing}'\", name={missing!r})\n", encoding="utf-8"
    )
    result = run_python(
        "import sys; sys.argv = ['kdebug', 'demo', '--runtime', 'process']\n"
        "from kdebug.cli.main import run\nrun()\n",
        pythonpath=[tmp_path / "stubs"],
    )
    assert result.returncode == ExitCode.NOT_SUPPORTED
    assert result.stdout == ""
    # nothing started first (no registry, no cluster): the error and its hint are all it says
    assert result.stderr.splitlines() == [
        f"error: kdebug demo needs {missing!r}, which is not installed",
        "hint: install the demo extra: pip install 'kdebug[demo]' (or -e '.[demo]' in a checkout)",
    ]
