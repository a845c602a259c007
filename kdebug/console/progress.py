"""Debugger progress events as `kdebug: ...` lines on stderr, with a spinner while waiting on a terminal."""

from __future__ import annotations

import threading
from typing import IO, TYPE_CHECKING, Any

from kdebug.console import terminal
from kdebug.console.sanitize import terminal_safe  # names and reasons come from the server
from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

rich_console = lazy_module("rich.console")


class ProgressRenderer:
    """Turns debugger progress events into stderr lines and a spinner (spinner only on a terminal).

    rich is imported on a thread when the first spinner is wanted, so loading it never delays the
    request that adds the container; the spinner appears once it is loaded, showing the latest state,
    unless a line or the banner came first.
    """

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.status: Status | None = None
        self.console: Console | None = None
        self._lock = threading.Lock()
        self._spinning: str | None = None  # the text the spinner should show now, None when paused
        self._rich_loaded = False
        self.loader: threading.Thread | None = None

    def __call__(self, event: str, **fields: Any) -> None:
        handler = getattr(self, f"_on_{event}", None)
        if handler:
            handler(**fields)

    def _line(self, text: str) -> None:

        self._pause()
        self.stream.write(f"kdebug: {terminal_safe(text, one_line=True)}\n")
        self.stream.flush()

    def _on_target(self, pod: str, container: str, via: str, namespace: str) -> None:
        if via:
            self._line(f"{via} -> pod {namespace}/{pod}")

    def _on_reusing(self, container: str, pod: str) -> None:
        self._line(
            f"reusing the running debug container {container} in pod {pod} (--no-reuse adds a new one)"
        )

    def _on_joining(self, container: str, owner: str) -> None:
        self._line(f"joining {owner}'s live shell {container} (--join): keystrokes and exit are shared")

    def _on_adding(self, container: str, image: str, pod: str) -> None:
        self._spin(f"adding debug container {container} ({image}) to pod {pod}")

    def _on_waiting(self, container: str, state: str) -> None:
        self._spin(f"waiting for {container}: {state}")

    def _on_image(self, image: str, reason: str) -> None:
        self._line(f"debug image {image}: {reason}")

    def _on_preflight(self, summary: str) -> None:
        self._line(summary)

    def _on_security(self, profile: str, reason: str) -> None:
        self._line(f"security profile {reason}")

    def _on_copy(self, copy: str, pod: str) -> None:
        self._line(f"created pod {copy}, a copy of {pod} (shareProcessNamespace) with the debugger in it")

    def _on_copy_deleted(self, copy: str) -> None:
        self._line(f"deleted the copy {copy}")

    def _on_copy_kept(self, copy: str, namespace: str) -> None:
        self._line(f"kept the copy {copy}; delete it with: kubectl delete pod {copy} -n {namespace}")

    def _on_banner(self, **fields: Any) -> None:
        self._pause()
        verb = "attached to" if fields.get("reused") else "debug container"
        self._line(f"pod {fields['namespace']}/{fields['pod']}, target container {fields['target']}")
        self._line(f"{verb} {fields['container']}, image {fields['image']}")
        self._line(f"the target's filesystem is at {fields['target_root']}")

    def _spin(self, text: str) -> None:

        if not terminal.is_terminal(self.stream):
            return
        text = terminal_safe(text, one_line=True)
        with self._lock:
            self._spinning = text
            if self.status is not None:
                self.status.update(text)
            elif self._rich_loaded:
                self._show(text)
            elif self.loader is None:
                self.loader = threading.Thread(target=self._load_rich, name="kdebug-spinner", daemon=True)
                self.loader.start()

    def _load_rich(self) -> None:
        rich_console.Console  # noqa: B018 (first use imports rich, here off the main thread)
        with self._lock:
            self._rich_loaded = True
            if self._spinning is not None and self.status is None:
                self._show(self._spinning)

    def _show(self, text: str) -> None:
        self.console = rich_console.Console(file=self.stream)
        self.status = self.console.status(text)
        self.status.start()

    def _pause(self) -> None:
        with self._lock:
            self._spinning = None
            if self.status is not None:
                self.status.stop()
                self.status = None

    def stop(self) -> None:
        self._pause()
