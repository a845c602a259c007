"""kdebug.automation.fanout: bounded concurrency, per-item timeout, failures kept apart, Ctrl-C."""

from __future__ import annotations

import threading

import pytest

from kdebug.automation import fanout


def test_outcomes_come_back_in_item_order():
    outcomes = fanout.fan_out([3, 1, 2], lambda item, control: item * 10, parallel=3)
    assert [(o.item, o.status, o.result) for o in outcomes] == [
        (3, "done", 30),
        (1, "done", 10),
        (2, "done", 20),
    ]


@pytest.mark.parametrize("parallel", [1, 2, 4], ids=["one", "two", "four"])
def test_never_more_than_parallel_items_run_at_once(parallel):
    lock, running, peak = threading.Lock(), [0], [0]
    gate = threading.Barrier(parallel, timeout=10)

    def work(item, control):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if item < parallel:
            gate.wait()  # the first `parallel` items overlap for sure
        with lock:
            running[0] -= 1
        return item

    fanout.fan_out(list(range(parallel * 3)), work, parallel=parallel)
    assert peak[0] == parallel


def test_one_failure_does_not_stop_the_others():
    def work(item, control):
        if item == 1:
            raise RuntimeError("boom")
        return item

    outcomes = fanout.fan_out([0, 1, 2], work, parallel=1)
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert str(outcomes[1].error) == "boom"


def test_an_item_past_its_deadline_is_aborted_and_reported_timeout():
    released = threading.Event()

    def work(item, control):
        if item == "slow":
            with control.on_abort(released.set):
                released.wait(10)
        return item

    outcomes = fanout.fan_out(["slow", "quick"], work, parallel=2, timeout_s=0.3)
    assert [o.status for o in outcomes] == ["timeout", "done"] and released.is_set()


def test_ctrl_c_keeps_finished_results_and_cancels_running_and_waiting_items():
    release = threading.Event()
    started = threading.Event()

    def work(item, control):
        if item == 0:
            return "finished"
        started.set()
        with control.on_abort(release.set):
            release.wait(10)
        return "late"

    seen = []

    def on_outcome(outcome):
        seen.append(outcome.status)
        if len(seen) == 1:
            started.wait(10)  # item 1 runs now
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C while results arrive

    outcomes = fanout.fan_out([0, 1, 2], work, parallel=2, on_outcome=on_outcome)
    assert [o.status for o in outcomes] == ["done", "cancelled", "cancelled"]
    assert release.is_set()  # the running item was told to stop
    assert seen == ["done", "cancelled", "cancelled"]  # cancelled items are reported too


def test_a_step_has_its_own_timeout_within_the_item():
    def work(item, control):
        with control.step(0.2) as step:
            done = threading.Event()
            with step.on_abort(done.set):
                done.wait(10)
            return step.aborted

    assert fanout.fan_out(["x"], work, parallel=1)[0].result == "timeout"


def test_abort_callbacks_registered_after_the_abort_run_at_once():
    control = fanout.Control(None, lambda: 0.0)
    control.abort("cancelled")
    called = []
    with control.on_abort(lambda: called.append(True)):
        pass
    assert called == [True]
