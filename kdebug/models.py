"""Frozen dataclasses shared across kdebug: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageChoice:
    """The debug image for one session, the shell to start in it and why it was chosen."""

    image: str
    shell: list[str] = field(default_factory=lambda: ["sh"])
    reason: str = ""
    run_as_user: int | None = None
    run_as_group: int | None = None


@dataclass(frozen=True)
class TargetRef:
    """A parsed TARGET argument: `kind` is the singular resource name (pod, deployment, ...)."""

    kind: str
    name: str


@dataclass(frozen=True)
class ResolvedTarget:
    """The pod (as the API returned it) and the container chosen inside it."""

    namespace: str
    pod: dict
    container: str
    via: str = ""  # how the pod was found, e.g. "deployment/shop"

    @property
    def pod_name(self) -> str:
        return str(self.pod["metadata"]["name"])
