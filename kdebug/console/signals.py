"""Stop signals (Ctrl-C, SIGTERM, SIGHUP) become one KeyboardInterrupt that the session cannot lose."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

REDELIVER_EVERY_S = 1.0
REDELIVER_TIMES = 5


@contextlib.contextmanager
def sigint_redelivered(handled: threading.Event) -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, and deliver it again until handled.

    Python turns SIGINT into KeyboardInterrupt in the main thread, but one that lands inside an object
    finalizer (e.g. a TLS socket closed by the garbage collector) is printed as "Exception ignored"
    and dropped: kdebug would keep waiting for a long command. So after a SIGINT the signal is sent
    again every second (a few times) until the debugger says it caught the interrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = threading.Event()
    finished = threading.Event()
    # SIGTERM (timeout(1), a CI runner) and SIGHUP (a closed terminal window) end the session the way
    # Ctrl-C does: terminal restored, the container's fate reported, the session recorded
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in stopping}

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        received.set()
        raise KeyboardInterrupt

    def redeliver() -> None:
        sent = 0
        while not finished.wait(REDELIVER_EVERY_S):
            if received.is_set() and not handled.is_set() and sent < REDELIVER_TIMES:
                sent += 1
                os.kill(os.getpid(), signal.SIGINT)

    for sig in stopping:
        signal.signal(sig, on_sigint)
    watcher = threading.Thread(target=redeliver, name="kdebug-sigint", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()  # no redelivery may land after the previous handlers are back
        for sig, handler in previous.items():
            signal.signal(sig, handler)
