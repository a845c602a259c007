"""PURE: taking over a running kdebug shell instead of adding another ephemeral container (they can
never be removed, so an interactive session reuses one with the same image and target)."""

from __future__ import annotations

from kdebug.debug import spec
from kdebug.debug.request import SessionPlan


def reusable_shell(
    pod: dict, image: str, target: str, plan: SessionPlan
) -> tuple[str, spec.StartupState] | None:
    """The running kdebug shell to take over and its state, when the plan allows reuse."""
    if not plan.reuse:
        return None
    existing = spec.find_reusable_container(pod, image, target)
    if existing is None:
        return None
    return existing, spec.container_state(pod, existing)
