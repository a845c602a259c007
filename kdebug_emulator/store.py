"""In-memory object store: resourceVersions, a bounded event history for watches, watch fan-out,
label/field selectors, and the request log.

All methods run on the emulator's event loop thread (the server and the runtime call them there;
the `Emulator` object hops onto that loop for calls from tests), so no locks are needed.
"""

from __future__ import annotations

import asyncio
import copy
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)


class SelectorError(ValueError):
    """A selector the API server would refuse with 400 BadRequest (the message is the server's)."""


class TooOldError(Exception):
    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


# --- selectors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # "!"


_SET_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)\s*$")
_KEY_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside `in (...)` parentheses."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def parse_label_selector(selector: str) -> list[Requirement]:
    requirements: list[Requirement] = []
    for term in _split_terms(selector):
        if match := _SET_RE.match(term):
            values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
            requirements.append(Requirement(match.group(1), match.group(2), values))
        elif match := _EQ_RE.match(term):
            op = "!=" if match.group(2) == "!=" else "="
            requirements.append(Requirement(match.group(1), op, (match.group(3),)))
        elif match := _KEY_RE.match(term):
            requirements.append(Requirement(match.group(2), "!" if match.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: invalid label selector: {term.strip()!r}")
    return requirements


SUPPORTED_FIELDS = {
    "pods": ("metadata.name", "metadata.namespace", "status.phase", "spec.nodeName"),
}
_DEFAULT_FIELDS = ("metadata.name", "metadata.namespace")


def parse_field_selector(selector: str, resource: str) -> list[tuple[str, str, str]]:
    """[(field, op, value)] with op "=" or "!="; unknown fields are refused like the API server does."""
    allowed = SUPPORTED_FIELDS.get(resource, _DEFAULT_FIELDS)
    terms: list[tuple[str, str, str]] = []
    for term in (t for t in selector.split(",") if t.strip()):
        match = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not match:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
        name, op, value = match.groups()
        if name not in allowed:
            raise SelectorError(f"field label not supported: {name}")
        terms.append((name, "!=" if op == "!=" else "=", value))
    return terms


def _field_value(obj: Obj, dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Selector:
    labels: tuple[Requirement, ...] = ()
    fields: tuple[tuple[str, str, str], ...] = ()

    def matches(self, obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        if not all(r.matches(labels) for r in self.labels):
            return False
        for name, op, value in self.fields:
            equal = _field_value(obj, name) == value
            if equal != (op == "="):
                return False
        return True


def build_selector(resource: str, label_selector: str | None, field_selector: str | None) -> Selector:
    labels = tuple(parse_label_selector(label_selector)) if label_selector else ()
    fields = tuple(parse_field_selector(field_selector, resource)) if field_selector else ()
    return Selector(labels, fields)


# --- store ----------------------------------------------------------------------------------------


@dataclass
class Event:
    rv: int
    resource: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj


@dataclass(eq=False)
class Watcher:
    resource: str
    namespace: str | None
    selector: Selector
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def wants(self, event: Event) -> bool:
        if event.resource != self.resource:
            return False
        if self.namespace and event.obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return self.selector.matches(event.obj)


class Store:
    def __init__(self, clock: Callable[[], str], new_uid: Callable[[], str], history_limit: int = 1000):
        self._clock = clock
        self._new_uid = new_uid
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._rv = 100
        self.history: deque[Event] = deque(maxlen=history_limit)
        self._watchers: set[Watcher] = set()

    # resourceVersions ------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def set_history_limit(self, limit: int) -> None:
        self.history = deque(self.history, maxlen=limit)

    def oldest_replayable(self) -> int:
        """Watches from a resourceVersion below this one have missed events."""
        return self.history[0].rv - 1 if len(self.history) == self.history.maxlen else 0

    # reads -------------------------------------------------------------------------------------
    def get(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        obj = self._objects.get(resource, {}).get((namespace or "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, resource: str, namespace: str | None = None, selector: Selector | None = None
    ) -> list[Obj]:
        found = [
            copy.deepcopy(obj)
            for (ns, _name), obj in sorted(self._objects.get(resource, {}).items())
            if not namespace or ns == namespace
        ]
        return [obj for obj in found if selector is None or selector.matches(obj)]

    # writes ------------------------------------------------------------------------------------
    def create(self, resource: str, obj: Obj) -> Obj:
        """Store a new object, filling the server-owned metadata. The caller checks for conflicts."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["uid"] = self._new_uid()
        meta["creationTimestamp"] = self._clock()
        meta.setdefault("generation", 1)
        return self._put(resource, obj, "ADDED")

    def replace(self, resource: str, obj: Obj, *, spec_changed: bool = False) -> Obj:
        obj = copy.deepcopy(obj)
        if spec_changed:
            meta = obj.setdefault("metadata", {})
            meta["generation"] = int(meta.get("generation", 1)) + 1
        return self._put(resource, obj, "MODIFIED")

    def delete(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        obj = self._objects.get(resource, {}).pop((namespace or "", name), None)
        if obj is None:
            return None
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(Event(self._rv, resource, "DELETED", obj))
        return copy.deepcopy(obj)

    def _put(self, resource: str, obj: Obj, kind: str) -> Obj:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._next_rv())
        self._objects.setdefault(resource, {})[(meta.get("namespace") or "", meta["name"])] = obj
        self._emit(Event(self._rv, resource, kind, copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    # watches -----------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self.history.append(event)
        for watcher in list(self._watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    def events_since(self, resource: str, rv: int) -> list[Event]:
        """Events after `rv` for `resource`, or TooOldError when the history no longer reaches back."""
        oldest = self.oldest_replayable()
        if rv < oldest:
            raise TooOldError(rv, oldest)
        return [e for e in self.history if e.rv > rv and e.resource == resource]

    def subscribe(self, resource: str, namespace: str | None, selector: Selector) -> Watcher:
        watcher = Watcher(resource, namespace, selector)
        self._watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        """Server stopping: every open watch ends (a None on its queue)."""
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._watchers.clear()


RequestListener = Callable[[dict[str, Any]], None]
REQUEST_LOG_LIMIT = 20_000  # entries one emulator keeps, oldest dropped first: far above what a test sends


class RequestLog:
    """The last `limit` requests the server answered: method, path, query, user, user_agent, code,
    content_type and labels (of the object the request carried or targeted, when there was one).

    Listeners see every entry as it is added, including those the bound drops later. Written on the
    server's loop and read from test threads, hence the lock.
    """

    def __init__(self, limit: int = REQUEST_LOG_LIMIT) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._listeners: list[RequestListener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: RequestListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)
