"""Environment variables set while a step runs, then put back as they were: what
`@environment(vars=...)` and `@secrets`' inline sources do (process-wide, as in Metaflow)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def variables_set(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the duration of the block; restore each one after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
