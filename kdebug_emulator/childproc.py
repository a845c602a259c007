"""Child processes that never outlive the kdebug process that started them (Linux PR_SET_PDEATHSIG)."""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def child_dies_with_parent() -> None:
    """preexec_fn: if kdebug dies hard (SIGKILL), the child gets SIGKILL too: no strays.

    The signal follows the *thread* that forked, so start children from a thread that lives as long
    as they should (the main thread, or the emulator's event-loop thread).
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
