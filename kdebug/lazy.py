"""PURE (standard library only, imports nothing until used): modules imported on first use, so a command
pays only for what it runs. Pure modules use it too, for the parser their one file-reading function needs.

`kdebug --help` and the usage errors must not load the Kubernetes client, the registry code or rich.
The pattern, in any module of the package:

    from typing import TYPE_CHECKING

    from kdebug.lazy import lazy_module

    if TYPE_CHECKING:  # names used only in annotations: free at run time
        from kdebug.debug.session import AttachRequest

    session = lazy_module("kdebug.debug.session")  # imported when `session.X` is first read

    def run(request: AttachRequest) -> int:
        return session.Debugger(...).run(request)

Rules that keep it predictable:
- Module-level `import x` for the standard library's cheap modules and for kdebug's pure ones
  (errors, durations, models); `lazy_module` for anything that pulls in a client, a parser or a renderer.
- No function-local imports for speed: they hide dependencies and are repeated in every caller.
- The proxy is not put in `sys.modules` and keeps no copies of attributes: every read goes to the real
  module, so `monkeypatch.setattr("kdebug.debug.session.Debugger", ...)` is seen by the callers.
- A name that does not exist fails at first use with the usual ImportError / AttributeError.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for the module `name` and imports it on first attribute access (thread-safe: the import
    system holds the module's lock while it loads)."""

    def _load(self) -> ModuleType:
        name = self.__name__
        if name not in sys.modules:
            __import__(name)  # the import statement's own path: `-X importtime` shows the module
        return sys.modules[name]

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._load(), attribute, value)

    def __delattr__(self, attribute: str) -> None:
        delattr(self._load(), attribute)

    def __dir__(self) -> list[str]:
        return dir(self._load())

    def __repr__(self) -> str:
        loaded = "loaded" if self.__name__ in sys.modules else "not loaded yet"
        return f"<lazy module {self.__name__!r} ({loaded})>"


def lazy_module(name: str) -> ModuleType:
    """The module `name` if it is already imported, else a proxy that imports it on first use."""
    return sys.modules.get(name) or LazyModule(name)
