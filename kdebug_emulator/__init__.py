"""The local Kubernetes API emulator behind `kdebug demo` and the tests.

`Emulator` is imported lazily so pure modules here (status, patch, validation) stay free of aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kdebug_emulator.server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from kdebug_emulator.server import Emulator

        return Emulator
    raise AttributeError(name)
