"""PURE: runbook files (docs/runbooks.md): parse and validate YAML with line numbers, judge steps,
render the report as text, JSON or Markdown.

A runbook names a default target and options, and a list of steps; each step runs a command in
the kdebug toolbox of every target pod. Problems are reported as `FILE:LINE: message`, all of them
at once, never as a traceback: the YAML is composed into nodes (which carry their marks) and the
nodes are checked one by one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kdebug.automation.results import KIND_EXPECT, RunError, RunResult, result_dict
from kdebug.durations import parse_duration
from kdebug.errors import KdebugError, UsageError
from kdebug.kube import names
from kdebug.kube.targets import parse_target
from kdebug.lazy import lazy_module
from kdebug.security import profiles as security_profiles

yaml = lazy_module("yaml")  # loaded by the first runbook parsed, not by importing the module

REPORT_VERSION = 1
DEFAULT_STEP_TIMEOUT_S = 60.0
ON_FAILURE = ("stop", "continue")
PROFILES = security_profiles.PROFILE_CHOICES
OK, FAILED, SKIPPED, CANCELLED = "ok", "failed", "skipped", "cancelled"
# Limits on what a (possibly shared, possibly hostile) file can make kdebug do before it runs:
MAX_RUNBOOK_BYTES = 1024 * 1024  # checked before parsing: an 11 MB file took 60 s and 1 GB
MAX_YAML_DEPTH = 64  # PyYAML's composer recurses per level: deeper files raised RecursionError
MAX_EXPECT_INPUT = 256 * 1024  # the part of a step's stdout an `expect` regex is searched in

TOP_KEYS = (
    "name",
    "description",
    "target",
    "selector",
    "all",
    "namespace",
    "container",
    "image",
    "profile",
    "parallel",
    "timeout",
    "steps",
)
STEP_KEYS = ("name", "run", "script", "timeout", "expect", "on_failure")


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str] | None = None  # `run:` as a list
    shell_code: str | None = None  # `run:` as a string, or `script:`
    timeout_s: float = DEFAULT_STEP_TIMEOUT_S
    expect: str | None = None
    on_failure: str = "stop"
    line: int = 0


@dataclass(frozen=True)
class Runbook:
    name: str
    steps: list[Step]
    description: str = ""
    targets: list[str] = field(default_factory=list)
    selector: str | None = None
    all_pods: bool = False
    namespace: str | None = None
    container: str | None = None
    image: str | None = None
    profile: str | None = None
    parallel: int | None = None
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> its line in the file


class RunbookError(UsageError):
    """All problems of one file; the message is the first, `problems` has every `FILE:LINE: ...`."""

    def __init__(self, problems: list[str]):
        more = f" (and {len(problems) - 1} more; see `kdebug runbook validate`)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)
        self.problems = problems


# -- parsing -----------------------------------------------------------------------------------


def parse_runbook(text: str, source: str = "runbook") -> Runbook:
    """The runbook in `text`, or RunbookError listing every problem with its line."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_RUNBOOK_BYTES:
        raise RunbookError([size_problem(source, size)])
    try:
        _check_depth(text, source)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise RunbookError([f"{source}:{line}: not valid YAML: {problem}"]) from None
    checker = _Checker(source)
    book = checker.runbook(root)
    if checker.problems or book is None:
        raise RunbookError(checker.problems or [f"{source}:1: empty runbook"])
    return book


def size_problem(source: str, size: int) -> str:
    return f"{source}:1: the file is {size} bytes, over the {MAX_RUNBOOK_BYTES} byte limit for a runbook"


def _check_depth(text: str, source: str) -> None:
    """RunbookError at the first collection nested deeper than MAX_YAML_DEPTH, found from the parser's
    events (the parser keeps its own stack; only the composer recurses)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                line = event.start_mark.line + 1
                raise RunbookError([f"{source}:{line}: nested deeper than {MAX_YAML_DEPTH} levels"])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Checker:
    """Walks the YAML nodes, collecting problems (with lines) instead of stopping at the first."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []
        self.default_timeout: float | None = None

    def problem(self, node: Any, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.source}:{line}: {message}")

    def mapping(self, node: Any, what: str, allowed: tuple[str, ...]) -> dict[str, tuple[Any, Any]] | None:
        """key -> (key node, value node); unknown keys and duplicates are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping")
            return None
        entries: dict[str, tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                self.problem(key_node, f"{what}: keys must be plain names")
            elif key in entries:
                self.problem(key_node, f"{what}: duplicate key {key!r}")
            elif key not in allowed:
                self.problem(key_node, f"{what}: unknown key {key!r} (allowed: {', '.join(allowed)})")
            else:
                entries[key] = (key_node, value_node)
        return entries

    def string(self, node: Any, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            self.problem(node, f"{what} must be a string")
            return None
        return str(node.value)

    def scalar(self, node: Any, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"{what} must be a single value")
            return None
        return _construct(node)

    def runbook(self, root: Any) -> Runbook | None:
        if root is None:
            self.problems.append(f"{self.source}:1: the file is empty")
            return None
        entries = self.mapping(root, "runbook", TOP_KEYS)
        if entries is None:
            return None
        name = self.string(entries["name"][1], "name") if "name" in entries else None
        if "name" not in entries:
            self.problem(root, "runbook: missing required key 'name'")
        if "timeout" in entries:  # the default for steps: read before them
            self.default_timeout = self.duration(entries["timeout"][1], "timeout")
        steps = self.steps(entries["steps"][1]) if "steps" in entries else []
        if "steps" not in entries:
            self.problem(root, "runbook: missing required key 'steps'")
        options = self.options(entries)
        self.target_fields(entries)
        if name is None or not steps:
            return None
        lines = {key: key_node.start_mark.line + 1 for key, (key_node, _value) in entries.items()}
        return Runbook(name=name, steps=steps, lines=lines, **options)

    def options(self, entries: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for key, field_name in (
            ("description", "description"),
            ("selector", "selector"),
            ("namespace", "namespace"),
            ("container", "container"),
            ("image", "image"),
        ):
            if key in entries:
                value = self.string(entries[key][1], key)
                if value is not None:
                    options[field_name] = value
        if "target" in entries:
            options["targets"] = self.targets(entries["target"][1])
        if "all" in entries:
            value = self.scalar(entries["all"][1], "all")
            if not isinstance(value, bool):
                self.problem(entries["all"][1], "all must be true or false")
            else:
                options["all_pods"] = value
        if "profile" in entries:
            value = self.string(entries["profile"][1], "profile")
            if value is not None and value not in PROFILES:
                self.problem(entries["profile"][1], f"profile {value!r}: choose one of {', '.join(PROFILES)}")
            elif value is not None:
                options["profile"] = value
        if "parallel" in entries:
            value = self.scalar(entries["parallel"][1], "parallel")
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self.problem(entries["parallel"][1], "parallel must be a whole number of at least 1")
            else:
                options["parallel"] = value
        return options

    def target_fields(self, entries: dict[str, tuple[Any, Any]]) -> None:
        """namespace, target, container and selector go into API paths and queries: each is checked as
        the API server checks it (kdebug.kube.names), so a bad one stops the runbook before any request."""
        checks: dict[str, Callable[[str], object]] = {
            "namespace": lambda value: names.check_namespace(value, "namespace"),
            "container": lambda value: names.check_container(value, "container"),
            "selector": lambda value: names.check_selector(value, "selector"),
            "target": lambda value: parse_target(value, "target"),
        }
        for key, check in checks.items():
            if key not in entries:
                continue
            node = entries[key][1]
            for item in node.value if isinstance(node, yaml.SequenceNode) else [node]:
                # a value that is not a string is already a problem (options())
                if isinstance(item, yaml.ScalarNode) and item.tag == "tag:yaml.org,2002:str":
                    try:
                        check(str(item.value))
                    except UsageError as exc:
                        self.problem(item, exc.message)

    def targets(self, node: Any) -> list[str]:
        if isinstance(node, yaml.SequenceNode):
            found = [self.string(item, "target") for item in node.value]
            return [item for item in found if item]
        value = self.string(node, "target (a TARGET or a list of them)")
        return [value] if value else []

    def duration(self, node: Any, what: str) -> float | None:
        value = self.scalar(node, what)
        if isinstance(value, bool) or value is None:
            self.problem(node, f"{what} must be a duration like 30s or 2m")
            return None
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value), option=what)
            except KdebugError:
                self.problem(node, f"{what}: invalid duration {value!r} (use forms like 30s, 2m, 1h)")
                return None
        if seconds <= 0:
            self.problem(node, f"{what} must be longer than 0s")
            return None
        return seconds

    def steps(self, node: Any) -> list[Step]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.problem(node, "steps must be a non-empty list")
            return []
        steps: list[Step] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(node.value, start=1):
            step = self.step(item, index)
            if step is None:
                continue
            if step.name in seen:
                self.problem(
                    item,
                    f"step {index}: name {step.name!r} is already used by the step on line {seen[step.name]}",
                )
                continue
            seen[step.name] = step.line
            steps.append(step)
        return steps

    def step(self, node: Any, index: int) -> Step | None:
        what = f"step {index}"
        entries = self.mapping(node, what, STEP_KEYS)
        if entries is None:
            return None
        name = self.string(entries["name"][1], f"{what}: name") if "name" in entries else None
        if "name" not in entries:
            self.problem(node, f"{what}: missing required key 'name'")
        argv, shell_code = None, None
        has_run, has_script = "run" in entries, "script" in entries
        if has_run == has_script:
            self.problem(node, f"{what}: give exactly one of 'run' or 'script'")
        elif has_run:
            run = entries["run"][1]
            if isinstance(run, yaml.SequenceNode):
                argv = [self.string(item, f"{what}: run[]") or "" for item in run.value]
                if not argv:
                    self.problem(run, f"{what}: run must not be empty")
            else:
                shell_code = self.string(run, f"{what}: run (a command string or a list)")
        else:
            shell_code = self.string(entries["script"][1], f"{what}: script")
        timeout = self.default_timeout or DEFAULT_STEP_TIMEOUT_S
        if "timeout" in entries:
            timeout = self.duration(entries["timeout"][1], f"{what}: timeout") or timeout
        expect = None
        if "expect" in entries:
            expect = self.string(entries["expect"][1], f"{what}: expect")
            if expect is not None and (problem := _regex_problem(expect)):
                self.problem(
                    entries["expect"][1], f"{what}: expect is not a valid regular expression: {problem}"
                )
        on_failure = "stop"
        if "on_failure" in entries:
            on_failure = self.string(entries["on_failure"][1], f"{what}: on_failure") or "stop"
            if on_failure not in ON_FAILURE:
                self.problem(
                    entries["on_failure"][1],
                    f"{what}: on_failure must be stop or continue, not {on_failure!r}",
                )
        if name is None or (argv is None and shell_code is None):
            return None
        return Step(
            name=name,
            argv=argv,
            shell_code=shell_code,
            timeout_s=timeout,
            expect=expect,
            on_failure=on_failure,
            line=node.start_mark.line + 1,
        )


def _construct(node: Any) -> Any:
    """A scalar node's value with YAML's own typing (true, 12, 1.5, strings)."""
    return yaml.SafeLoader("").construct_object(node)


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:  # a{4294967296}, 1000 nested groups
        return str(exc)
    return None


# -- what the file asks for beyond `auto` ---------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    """A profile or image a runbook file asks for that raises privileges or leaves the catalog: it
    runs only with `flag` given on the command line (the file may come from someone else)."""

    what: str  # "profile sysadmin (privileged)", "image evil.example/x:1 (not in the catalog)"
    flag: str  # "--allow-profile sysadmin"
    line: int

    def refusal(self, source: str) -> str:
        return (
            f"{source}:{self.line}: the runbook asks for {self.what}; "
            f"run it with {self.flag} if you trust this file"
        )

    def record(self) -> str:
        return f"{self.what.split(' (', 1)[0]} ({self.flag})"


def escalations(book: Runbook, image_in_catalog: Callable[[str], bool], cli_image: bool) -> list[Escalation]:
    """What `book` asks for that needs a flag: a profile that raises privileges, an image outside the
    catalog and allowlist (`image_in_catalog`) unless --image on the command line replaces it."""
    found: list[Escalation] = []
    profile = book.profile
    if profile is not None and security_profiles.raises_privileges(profile):
        found.append(
            Escalation(
                f"profile {profile} ({security_profiles.PRIVILEGES[profile]})",
                f"--allow-profile {profile}",
                book.lines.get("profile", 1),
            )
        )
    if book.image is not None and not cli_image and not image_in_catalog(book.image):
        found.append(
            Escalation(
                f"image {book.image} (not in the catalog or the allowlist)",
                f"--allow-image {book.image}",
                book.lines.get("image", 1),
            )
        )
    return found


# -- judging a step ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepOutcome:
    step: str
    status: str  # ok, failed, skipped, cancelled
    result: RunResult | None = None


@dataclass(frozen=True)
class PodReport:
    pod: str
    namespace: str
    container: str
    steps: list[StepOutcome]

    @property
    def ok(self) -> bool:
        return all(outcome.status == OK for outcome in self.steps)


# search(pattern, text) -> matched; raises KdebugError when it could not decide (e.g. out of time)
Search = Callable[[str, str], bool]


def search_in_process(pattern: str, text: str) -> bool:
    """Python's re, unbounded in time: for trusted patterns only (the runner bounds runbook ones)."""
    return re.search(pattern, text, re.MULTILINE) is not None


def judge_step(step: Step, result: RunResult, search: Search = search_in_process) -> StepOutcome:
    """ok when the command exited 0 and its stdout (the first MAX_EXPECT_INPUT characters) matches
    `expect` (if any)."""
    if result.error is not None:
        status = CANCELLED if result.error.kind == "cancelled" else FAILED
        return StepOutcome(step.name, status, result)
    if step.expect is not None:
        try:
            matched = search(step.expect, result.stdout[:MAX_EXPECT_INPUT])
        except KdebugError as exc:
            error = RunError(KIND_EXPECT, f"expect /{step.expect}/ (line {step.line}): {exc.message}")
            return StepOutcome(step.name, FAILED, _with_error(result, error))
        if not matched:
            error = RunError(KIND_EXPECT, f"output does not match expect /{step.expect}/")
            return StepOutcome(step.name, FAILED, _with_error(result, error))
    return StepOutcome(step.name, OK, result)


def _with_error(result: RunResult, error: RunError) -> RunResult:
    return replace(result, error=error)


def stops_after(step: Step, outcome: StepOutcome) -> bool:
    return outcome.status == CANCELLED or (outcome.status == FAILED and step.on_failure == "stop")


# -- the report --------------------------------------------------------------------------------


def report_dict(book: Runbook, pods: list[PodReport]) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "runbook": book.name,
        "description": book.description,
        "ok": all(pod.ok for pod in pods),
        "pods": [
            {
                "pod": pod.pod,
                "namespace": pod.namespace,
                "container": pod.container,
                "ok": pod.ok,
                "steps": [_step_dict(outcome) for outcome in pod.steps],
            }
            for pod in pods
        ],
    }


def _step_dict(outcome: StepOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {"name": outcome.step, "status": outcome.status}
    if outcome.result is not None:
        result = result_dict(outcome.result)
        for key in (
            "exit_code",
            "duration_s",
            "stdout",
            "stderr",
            "truncated",
            "error",
            "debug_container",
            "session_id",
        ):
            data[key] = result[key]
    return data


def render_json(book: Runbook, pods: list[PodReport]) -> str:
    return json.dumps(report_dict(book, pods), indent=2) + "\n"


def render_text(book: Runbook, pods: list[PodReport]) -> str:
    lines = [f"runbook {book.name}: {'ok' if all(p.ok for p in pods) else 'FAILED'}"]
    for pod in pods:
        for outcome in pod.steps:
            prefix = f"[pod/{pod.pod}/{pod.container}]"
            lines.append(f"{prefix} step {outcome.step}: {outcome.status}{_duration(outcome)}")
            result = outcome.result
            if result is None:
                continue
            lines += [f"{prefix}   {line}" for line in result.stdout.splitlines()]
            lines += [f"{prefix}   (stderr) {line}" for line in result.stderr.splitlines()]
            if result.error is not None:
                lines.append(f"{prefix}   {result.error.kind}: {result.error.message}")
    return "\n".join(lines) + "\n"


def render_markdown(book: Runbook, pods: list[PodReport]) -> str:
    """For an incident ticket: a summary table, then each step's output in a fenced block."""
    overall = "ok" if all(p.ok for p in pods) else "FAILED"
    out = [f"## Runbook: {book.name} ({overall})", ""]
    if book.description:
        out += [book.description.strip(), ""]
    out += ["| Pod | Step | Status | Duration | Exit code |", "| --- | --- | --- | --- | --- |"]
    for pod in pods:
        for outcome in pod.steps:
            result = outcome.result
            exit_code = "" if result is None or result.exit_code is None else str(result.exit_code)
            duration = _duration(outcome).strip(" ()")
            out.append(
                f"| {pod.namespace}/{pod.pod} | {_cell(outcome.step)} | {outcome.status} | "
                f"{duration} | {exit_code} |"
            )
    for pod in pods:
        for outcome in pod.steps:
            result = outcome.result
            if result is None:
                continue
            out += ["", f"### {pod.pod}: {outcome.step} ({outcome.status})", ""]
            if result.error is not None:
                out += [f"{result.error.kind}: {result.error.message}", ""]
            text = result.stdout + (("\n[stderr]\n" + result.stderr) if result.stderr else "")
            fence = "````" if "```" in text else "```"
            out += [f"{fence}text", text.rstrip("\n"), fence]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _duration(outcome: StepOutcome) -> str:
    return f" ({outcome.result.duration_s:.2f}s)" if outcome.result is not None else ""
