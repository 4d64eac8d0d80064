"""Step decorators: `@step` marks a method as a step; the others annotate a step."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def step(f: F) -> F:
    """Mark a FlowSpec method as a step of the flow."""
    f.is_step = True  # type: ignore[attr-defined]
    if not hasattr(f, "decorators"):
        f.decorators = []  # type: ignore[attr-defined]
    return f
