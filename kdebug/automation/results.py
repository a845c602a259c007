"""PURE: the result of `kdebug run` on one pod, its JSON and text renderings, the aggregate exit code.

The JSON shape is a contract for runbooks and bots (docs/run-json.md): `RESULT_SCHEMA` is that
contract as a JSON Schema, and `RESULT_VERSION` changes whenever a field changes meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kdebug.errors import ExitCode

RESULT_VERSION = 1

# error kinds a result can carry beyond the KdebugError kinds (not_found, forbidden, timeout, ...)
KIND_CANCELLED = "cancelled"
KIND_TIMEOUT = "timeout"
KIND_EXIT = "exit_code"  # the command ran and exited non-zero
KIND_EXPECT = "expect"  # runbook: the output did not match `expect`


@dataclass(frozen=True)
class RunError:
    kind: str
    message: str


@dataclass(frozen=True)
class RunResult:
    """One pod's outcome. `exit_code` is None when the command never ran to its end."""

    pod: str
    namespace: str
    container: str = ""
    debug_container: str = ""
    debug_image: str = ""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    session_id: str = ""
    error: RunError | None = None
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None


def error_for_exit(exit_code: int) -> RunError | None:
    return None if exit_code == 0 else RunError(KIND_EXIT, f"command exited with code {exit_code}")


def result_dict(result: RunResult) -> dict[str, Any]:
    """The documented JSON object for one pod (docs/run-json.md), field order fixed."""
    return {
        "version": RESULT_VERSION,
        "pod": result.pod,
        "namespace": result.namespace,
        "container": result.container,
        "debug_container": result.debug_container,
        "debug_image": result.debug_image,
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "duration_s": round(result.duration_s, 3),
        "session_id": result.session_id,
        "error": None
        if result.error is None
        else {"kind": result.error.kind, "message": result.error.message},
        "truncated": result.truncated,
    }


def render_json(results: Iterable[RunResult]) -> str:
    """`-o json`: one document, a list of results in pod order."""
    return json.dumps([result_dict(r) for r in results], indent=2) + "\n"


def render_jsonl_line(result: RunResult) -> str:
    """`-o jsonl`: one compact line per result, written as each pod finishes."""
    return json.dumps(result_dict(result), separators=(",", ":")) + "\n"


def render_text(result: RunResult) -> str:
    """`-o text`: each output line prefixed `[pod/NAME/CONTAINER]` like `kubectl logs --prefix`.

    stdout and stderr lines are both shown (stderr marked), then one status line for failures.
    """
    prefix = f"[pod/{result.pod}/{result.container}]" if result.container else f"[pod/{result.pod}]"
    lines = [f"{prefix} {line}" for line in _lines(result.stdout)]
    lines += [f"{prefix} (stderr) {line}" for line in _lines(result.stderr)]
    if result.truncated:
        lines.append(f"{prefix} ... output truncated (--max-output)")
    if result.error is not None:
        lines.append(f"{prefix} {result.error.kind}: {result.error.message}")
    return "".join(line + "\n" for line in lines)


def summary_line(results: list[RunResult]) -> str:
    """The stderr summary: `3 pods: 2 ok, 1 failed`."""
    counts: dict[str, int] = {}
    for result in results:
        status = "ok" if result.ok else (result.error.kind if result.error else "failed")
        status = "failed" if status == KIND_EXIT else status
        counts[status] = counts.get(status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: kv[0] != "ok"))
    noun = "pod" if len(results) == 1 else "pods"
    return f"{len(results)} {noun}: {parts}" if results else "0 pods"


# when every pod failed for the same one of these reasons, the exit code is attach's for it
SHARED_FAILURE_CODES = {"forbidden": ExitCode.PERMISSION_DENIED, "unreachable": ExitCode.UNREACHABLE}


def aggregate_exit_code(results: Iterable[RunResult]) -> int:
    """0 when every pod's command exited 0 (or there were none); 66/69 when every pod was refused
    permission / could not reach the cluster (as `attach` exits); else SOME_FAILED (70)."""
    results = list(results)
    if all(r.ok for r in results):
        return int(ExitCode.OK)
    kinds = {r.error.kind if r.error else "" for r in results}
    if len(kinds) == 1 and (kind := kinds.pop()) in SHARED_FAILURE_CODES:
        return int(SHARED_FAILURE_CODES[kind])
    return int(ExitCode.SOME_FAILED)


def _lines(text: str) -> list[str]:
    return text.splitlines() if text else []


# -- the documented schema (docs/run-json.md) and a small validator for it ----------------------

_ERROR_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "required": ["kind", "message"],
    "additionalProperties": False,
    "properties": {"kind": {"type": "string"}, "message": {"type": "string"}},
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "kdebug run result",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "version",
        "pod",
        "namespace",
        "container",
        "debug_container",
        "debug_image",
        "exit_code",
        "stdout",
        "stderr",
        "duration_s",
        "session_id",
        "error",
        "truncated",
    ],
    "properties": {
        "version": {"type": "integer", "const": RESULT_VERSION},
        "pod": {"type": "string"},
        "namespace": {"type": "string"},
        "container": {"type": "string"},
        "debug_container": {"type": "string"},
        "debug_image": {"type": "string"},
        "exit_code": {"type": ["integer", "null"]},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "duration_s": {"type": "number", "minimum": 0},
        "session_id": {"type": "string"},
        "error": _ERROR_SCHEMA,
        "truncated": {"type": "boolean"},
    },
}

RUN_DOCUMENT_SCHEMA: dict[str, Any] = {"type": "array", "items": RESULT_SCHEMA}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_problems(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """The subset of JSON Schema used above (type, const, required, properties, additionalProperties,
    items, minimum, pattern); an empty list means the value conforms."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in names):
            return [f"{where}: expected {' or '.join(names)}, got {type(value).__name__}"]
    problems: list[str] = []
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: expected {schema['const']!r}, got {value!r}")
    if isinstance(value, dict):
        problems += _object_problems(value, schema, where)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{where}[{index}]")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        problems.append(f"{where}: {value} is below {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']!r}")
    return problems


def _object_problems(value: dict, schema: dict[str, Any], where: str) -> list[str]:
    problems = [f"{where}: missing {name!r}" for name in schema.get("required", []) if name not in value]
    properties = schema.get("properties", {})
    for name, item in value.items():
        if name in properties:
            problems += schema_problems(item, properties[name], f"{where}.{name}")
        elif schema.get("additionalProperties") is False:
            problems.append(f"{where}: unexpected field {name!r}")
    return problems


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])
