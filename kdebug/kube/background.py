"""One call on a daemon thread, to overlap a round trip with other work.

    identity = Pending(identity_fields, client, kubeconfig, context)
    ...  # other requests and local work meanwhile
    fields = identity.result()  # waits; returns the value or raises the call's exception

A result nobody asks for (the command failed first) is simply dropped with the daemon thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Pending(Generic[T]):
    def __init__(self, call: Callable[..., T], *args: Any, **kwargs: Any):
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(call, args, kwargs), name=f"kdebug-{call.__name__}", daemon=True
        )
        self._thread.start()

    def _run(self, call: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            self._value = call(*args, **kwargs)
        except BaseException as exc:  # handed to whoever asks for the result
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
