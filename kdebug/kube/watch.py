"""The one wait loop: list (or start from a known copy), then watch from its resourceVersion until a
predicate is satisfied or the time is up.

Handles what a watch can do: ERROR 410 Gone/Expired (the resourceVersion is too old: list again and
watch from the new one), any other ERROR (a one-line KdebugError), the server closing the watch
(watch again from the last resourceVersion seen), BOOKMARK events (only move the resourceVersion on),
and DELETED (the caller's error). Callers pass pure predicates; the loop does the requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kdebug.errors import ApiError, KdebugError
from kdebug.kube.api import KubeApi

T = TypeVar("T")
GONE_CODE = 410
GONE_REASONS = frozenset({"Gone", "Expired"})
# a watch the server ends at once, again and again, is asked again at this pace, not in a tight loop
EMPTY_WATCH_PAUSE_S = 0.5


def deadline_in(timeout_s: float, clock: Callable[[], float] = time.monotonic) -> Callable[[], float]:
    """`remaining()` for a wait of `timeout_s` from now."""
    deadline = clock() + timeout_s
    return lambda: deadline - clock()


def is_gone(status: dict) -> bool:
    """An ERROR event's Status saying the resourceVersion is too old to watch from."""
    return status.get("code") == GONE_CODE or status.get("reason") in GONE_REASONS


def resource_version(obj: dict) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def watch_object(
    client: KubeApi,
    collection: str,
    name: str,
    until: Callable[[dict], T | None],
    remaining: Callable[[], float],
    *,
    deleted: Callable[[], KdebugError],
    start: dict | None = None,
    on_object: Callable[[dict], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T | None:
    """The first non-None `until(obj)` for the object `name` in `collection`; None when time is up.

    `start`: a copy of the object already held (e.g. a PATCH answer): its resourceVersion saves the
    first list. `on_object` sees every version of the object (progress, the newest copy). `deleted()`
    is raised when the object is gone.
    """
    selector = {"fieldSelector": f"metadata.name={name}"}
    current = start if start is not None and resource_version(start) else None
    version = ""
    while True:
        if not version:  # list (or take the copy held) for a resourceVersion to watch from
            if current is None:
                listing = client.get(collection, selector)
                items = listing.get("items") or []
                if not items:
                    raise deleted()
                current = items[0]
                version = resource_version(listing) or resource_version(current)
            else:
                version = resource_version(current)
            found = _look(current, until, on_object)
            if found is not None:
                return found
        left = remaining()
        if left <= 0:
            return None
        relist = False
        events = 0
        for event in client.watch(collection, {**selector, "resourceVersion": version}, left):
            events += 1
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if not is_gone(obj):
                    raise ApiError(
                        f"watching {name} failed: {obj.get('message') or obj.get('reason') or obj}"
                    )
                relist = True
                break
            version = resource_version(obj) or version
            if kind == "DELETED":
                raise deleted()
            if kind in ("ADDED", "MODIFIED"):
                found = _look(obj, until, on_object)
                if found is not None:
                    return found
            if remaining() <= 0:
                return None
        # the server ended the watch (its timeout): watch again from the last resourceVersion, after a
        # pause when it ended without a word, so a server that ends every watch at once is not hammered
        if relist:
            current, version = None, ""
        elif events == 0:
            sleep(max(0.0, min(EMPTY_WATCH_PAUSE_S, remaining())))


def _look(obj: dict, until: Callable[[dict], T | None], on_object: Callable[[dict], None] | None) -> T | None:
    if on_object is not None:
        on_object(obj)
    return until(obj)
