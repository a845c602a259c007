"""The one error type kdebug raises on purpose, each kind with its documented exit code.

The CLI catches KdebugError once, prints `error: MESSAGE` (and `hint: HINT`) on stderr and exits
with `exit_code`. Codes 64-79 are kdebug's own (see docs/exit-codes.md); any other non-zero code
from `attach`/`run` is the remote command's.
"""

from __future__ import annotations

from enum import IntEnum

MAX_ERROR_CHARS = 1000  # an error line or a recorded error, whatever server text it quotes


class ExitCode(IntEnum):
    OK = 0
    USAGE = 64  # bad flags, arguments, config or input files
    NOT_FOUND = 65  # target namespace/pod/workload/container not found
    PERMISSION_DENIED = 66  # RBAC or Pod Security refused
    START_FAILED = 67  # the debug container did not start (image pull, config, runtime)
    TIMEOUT = 68  # waited longer than --timeout
    UNREACHABLE = 69  # cluster/registry unreachable, TLS or auth failure talking to it
    SOME_FAILED = 70  # `run`: at least one pod's command failed or errored
    VERIFY_FAILED = 71  # `sessions verify`: the audit chain or a transcript was altered
    CHECK_FAILED = 72  # `doctor`: at least one check failed
    STORE_ERROR = 73  # the session store is unreadable or corrupt
    API_ERROR = 74  # any other refusal from the API server (conflict, invalid, 5xx after retries)
    NOT_SUPPORTED = 75  # the target cannot be debugged this way (static pod, Windows, not running)
    INTERNAL = 76  # a bug in kdebug: an exception it did not expect (reported as one line, recorded)
    INTERRUPTED = 130  # Ctrl-C / SIGINT / SIGTERM


class KdebugError(Exception):
    """An expected failure: one line for the user, an optional hint, an exit code."""

    exit_code: ExitCode = ExitCode.API_ERROR
    kind: str = "error"

    def __init__(self, message: str, hint: str | None = None, *, exit_code: ExitCode | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(KdebugError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class NotFoundError(KdebugError):
    exit_code = ExitCode.NOT_FOUND
    kind = "not_found"


class PermissionDeniedError(KdebugError):
    exit_code = ExitCode.PERMISSION_DENIED
    kind = "forbidden"


class StartFailedError(KdebugError):
    exit_code = ExitCode.START_FAILED
    kind = "start_failed"


class WaitTimeoutError(KdebugError):
    exit_code = ExitCode.TIMEOUT
    kind = "timeout"


class UnreachableError(KdebugError):
    exit_code = ExitCode.UNREACHABLE
    kind = "unreachable"


class ApiError(KdebugError):
    exit_code = ExitCode.API_ERROR
    kind = "api"

    def __init__(self, message: str, hint: str | None = None, *, status: int = 0, reason: str = ""):
        super().__init__(message, hint)
        self.status = status
        self.reason = reason


class NotSupportedError(KdebugError):
    exit_code = ExitCode.NOT_SUPPORTED
    kind = "not_supported"


class InterruptedByUserError(KdebugError):
    exit_code = ExitCode.INTERRUPTED
    kind = "interrupted"


class StoreError(KdebugError):
    exit_code = ExitCode.STORE_ERROR
    kind = "store"


class InternalError(KdebugError):
    """An exception kdebug did not expect, as one line: `internal error: TYPE: message` (capped)."""

    exit_code = ExitCode.INTERNAL
    kind = "internal"

    @classmethod
    def wrapping(cls, exc: BaseException) -> InternalError:
        text = capped(" ".join(str(exc).split()), 200)
        return cls(
            f"internal error: {type(exc).__name__}" + (f": {text}" if text else ""),
            hint="this is a bug in kdebug; please report it with the command you ran",
        )


def capped(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis (servers choose its length)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
