"""Bounded-concurrency fan-out with a per-item timeout and clean cancellation (Ctrl-C).

    outcomes = fan_out(pods, work, parallel=10, timeout_s=60, on_outcome=print_as_it_finishes)

`work(item, control)` runs in a worker thread. It registers what would unblock it (closing a
websocket) with `control.on_abort(...)`; when the item's deadline passes or the user presses
Ctrl-C, those callbacks run and the item is reported `timeout` or `cancelled` at once, whatever the
worker does later. One item's exception never stops the others. On Ctrl-C the finished outcomes
are kept, running and waiting items become `cancelled`, and the running workers get a bounded
moment to wind down (close their audit records) before fan_out returns.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

DONE, FAILED, TIMEOUT, CANCELLED = "done", "failed", "timeout", "cancelled"
WIND_DOWN_S = 5.0  # after Ctrl-C: how long running workers get to close their records


class Control:
    """What a worker sees of the fan-out: its deadline, whether to stop, and abort hooks."""

    def __init__(self, deadline: float | None, clock: Callable[[], float]):
        self.deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.aborted: str | None = None  # TIMEOUT or CANCELLED once aborted

    def remaining(self, default: float = 365 * 86400.0) -> float:
        """Seconds left before this item's deadline (never negative)."""
        if self.deadline is None:
            return default
        return max(0.0, self.deadline - self._clock())

    @contextlib.contextmanager
    def on_abort(self, callback: Callable[[], None]) -> Iterator[None]:
        """Run `callback` if the item is aborted while the block runs (at once if it already was)."""
        with self._lock:
            already = self.aborted is not None
            if not already:
                self._callbacks.append(callback)
        if already:
            _quietly(callback)
        try:
            yield
        finally:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

    @contextlib.contextmanager
    def step(self, timeout_s: float | None) -> Iterator[Control]:
        """A child control for one step of the item: its own timeout, aborted with its parent."""
        now = self._clock()
        deadline = now + timeout_s if timeout_s else None
        if self.deadline is not None:
            deadline = self.deadline if deadline is None else min(deadline, self.deadline)
        child = Control(deadline, self._clock)
        timer = threading.Timer(timeout_s, child.abort, args=(TIMEOUT,)) if timeout_s else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            with self.on_abort(lambda: child.abort(self.aborted or CANCELLED)):
                yield child
        finally:
            if timer is not None:
                timer.cancel()

    def abort(self, why: str) -> None:
        with self._lock:
            if self.aborted is not None:
                return
            self.aborted = why
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _quietly(callback)


def _quietly(callback: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):
        callback()


@dataclass(frozen=True)
class Outcome(Generic[Item, Result]):
    """How one item ended: `result` when DONE, `error` when FAILED, neither for TIMEOUT/CANCELLED."""

    index: int
    item: Item
    status: str
    result: Result | None = None
    error: BaseException | None = None
    duration_s: float = 0.0


@dataclass
class _Running:
    index: int
    control: Control
    started: float


def fan_out(
    items: Sequence[Item],
    work: Callable[[Item, Control], Result],
    *,
    parallel: int,
    timeout_s: float | None = None,
    on_outcome: Callable[[Outcome[Item, Result]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    wind_down_s: float = WIND_DOWN_S,
) -> list[Outcome[Item, Result]]:
    """Run `work` on every item, at most `parallel` at a time; outcomes in item order.

    KeyboardInterrupt in the calling thread cancels the rest; the outcomes are still returned
    (the caller decides the exit code), so nothing finished is lost.
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(items)):
        pending.put(index)
    finished: queue.SimpleQueue[Outcome[Item, Result]] = queue.SimpleQueue()
    running: dict[int, _Running] = {}
    lock = threading.Lock()
    stop = threading.Event()
    outcomes: dict[int, Outcome[Item, Result]] = {}

    def worker() -> None:
        while not stop.is_set():
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            started = clock()
            control = Control(started + timeout_s if timeout_s else None, clock)
            with lock:
                running[index] = _Running(index, control, started)
            if stop.is_set():  # picked up while Ctrl-C was being handled
                control.abort(CANCELLED)
            try:
                value = work(items[index], control)
                outcome = Outcome(index, items[index], DONE, result=value, duration_s=clock() - started)
            except BaseException as exc:  # noqa: BLE001 (one item's failure must not stop the others)
                outcome = Outcome(index, items[index], FAILED, error=exc, duration_s=clock() - started)
            with lock:
                running.pop(index, None)
            finished.put(outcome)

    threads = [
        threading.Thread(target=worker, name=f"kdebug-fanout-{n}", daemon=True)
        for n in range(min(parallel, len(items)))
    ]
    for thread in threads:
        thread.start()

    def record(outcome: Outcome[Item, Result]) -> None:
        if outcome.index in outcomes:
            return  # already reported as timed out: the late result is dropped
        outcomes[outcome.index] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        while len(outcomes) < len(items):
            for outcome in _expired(running, lock, clock, items):
                record(outcome)
            if len(outcomes) >= len(items):
                break
            try:
                record(finished.get(timeout=_next_wait(running, lock, clock)))
            except queue.Empty:
                continue
    except KeyboardInterrupt:
        stop.set()
        _cancel_the_rest(items, running, lock, pending, record, clock)
        _wind_down(threads, wind_down_s, clock)
        for index in range(len(items)):
            if index not in outcomes:
                record(Outcome(index, items[index], CANCELLED))
    return [outcomes[index] for index in sorted(outcomes)]


def _next_wait(running: dict[int, _Running], lock: threading.Lock, clock: Callable[[], float]) -> float:
    """Until the nearest deadline of a running item (at most 1 s: a late worker start is noticed)."""
    with lock:
        deadlines = [r.control.deadline for r in running.values() if r.control.deadline is not None]
    if not deadlines:
        return 1.0
    return min(1.0, max(0.0, min(deadlines) - clock()))


def _expired(
    running: dict[int, _Running], lock: threading.Lock, clock: Callable[[], float], items: Sequence[Any]
) -> list[Outcome[Any, Any]]:
    now = clock()
    with lock:
        late = [r for r in running.values() if r.control.deadline is not None and now >= r.control.deadline]
        for entry in late:
            running.pop(entry.index, None)
    for entry in late:
        entry.control.abort(TIMEOUT)
    return [Outcome(r.index, items[r.index], TIMEOUT, duration_s=now - r.started) for r in late]


def _cancel_the_rest(
    items: Sequence[Any],
    running: dict[int, _Running],
    lock: threading.Lock,
    pending: queue.SimpleQueue[int],
    record: Callable[[Outcome[Any, Any]], None],
    clock: Callable[[], float],
) -> None:
    now = clock()
    with lock:
        active = list(running.values())
        running.clear()
    for entry in active:
        entry.control.abort(CANCELLED)
        record(Outcome(entry.index, items[entry.index], CANCELLED, duration_s=now - entry.started))
    while True:
        try:
            index = pending.get_nowait()
        except queue.Empty:
            break
        record(Outcome(index, items[index], CANCELLED))


def _wind_down(threads: list[threading.Thread], wind_down_s: float, clock: Callable[[], float]) -> None:
    deadline = clock() + wind_down_s
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - clock()))
