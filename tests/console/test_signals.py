"""A SIGINT that Python drops (it landed in an object finalizer) is delivered again until handled."""

from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

from kdebug.console.signals import sigint_redelivered


class SwallowsInterrupt:
    """Its finalizer receives the SIGINT: the KeyboardInterrupt is printed as ignored and lost."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs between these bytecodes, inside the finalizer
            pass


def test_dropped_sigint_is_delivered_again(monkeypatch):
    dropped: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))
    with pytest.raises(KeyboardInterrupt), sigint_redelivered(threading.Event()):
        SwallowsInterrupt()  # finalized at once
        threading.Event().wait(5)  # what a blocked watch looks like; interrupted by the redelivery
    assert dropped == [KeyboardInterrupt]  # the first interrupt really was dropped


def test_handled_interrupt_is_not_delivered_again():
    handled = threading.Event()
    seen: list[int] = []
    with sigint_redelivered(handled):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(5)
        except KeyboardInterrupt:
            handled.set()
        try:
            threading.Event().wait(1.5)  # longer than the redelivery interval
        except KeyboardInterrupt:
            seen.append(1)
    assert seen == []


def test_previous_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    with sigint_redelivered(threading.Event()):
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
