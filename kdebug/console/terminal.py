"""The only module touching termios, tty and signals: raw mode, window size, SIGWINCH.

Raw mode is a context manager that restores the saved attributes on every way out, including
exceptions and KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import termios
import tty
from collections.abc import Callable, Iterator
from typing import IO, Any


def is_terminal(stream: IO[Any] | int | None) -> bool:
    """True for a tty; False for pipes, files, closed or fake streams (pytest capture)."""
    if stream is None:
        return False
    try:
        fd = stream if isinstance(stream, int) else stream.fileno()
        return os.isatty(fd)
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Put the terminal on `fd` in raw mode (Ctrl-C becomes a byte for the remote shell)."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int) -> tuple[int, int]:
    """(columns, rows) of the terminal on `fd`; 80x24 when it reports nothing."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 80, 24
    return (size.columns or 80, size.lines or 24)


@contextlib.contextmanager
def on_resize(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on SIGWINCH while inside the block (main thread only), then restore the handler."""
    if not hasattr(signal, "SIGWINCH"):
        yield
        return
    previous = signal.signal(signal.SIGWINCH, lambda _signum, _frame: callback())
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def stdin_fd() -> int | None:
    """The real stdin file descriptor, or None when stdin is closed or replaced by a fake."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None


def stdin_has_data_source(fd: int | None) -> bool:
    """True when stdin is a pipe, socket or regular file (something to feed), not a tty or /dev/null."""
    if fd is None or is_terminal(fd):
        return False
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)
