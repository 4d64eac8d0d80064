"""The Client API's namespace, process-wide, with Metaflow's names: `namespace`,
`get_namespace`, `default_namespace`. It is resolved lazily, at the first object built, so
environment changes made after import still count; objects remember the namespace they were
built with. (Which ledger they read is ledger_choice.py's: the sql() and search() calls and
the command lines follow the same rule.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..current import get_username
from ..exceptions import LedgerflowError

# False: not chosen yet (the default is resolved on first use); None: every namespace.
_namespace: str | None | bool = False


def namespace(ns: str | None) -> str | None:
    """Switch the namespace (a tag, e.g. 'user:alice'); None sees every run.

    Returns the namespace now in force (the result of get_namespace()).
    """
    global _namespace
    if ns is not None and not isinstance(ns, str):
        raise LedgerflowError(
            f"namespace() takes a tag such as 'user:alice', or None; got {type(ns).__name__}"
        )
    _namespace = ns
    return get_namespace()


def get_namespace() -> str | None:
    """The namespace used to filter runs (None: no filtering)."""
    if _namespace is False:
        default_namespace()
    assert _namespace is not False
    return _namespace  # type: ignore[return-value]


def default_namespace() -> str:
    """Reset the namespace to the default, 'user:<username>', and return it."""
    global _namespace
    _namespace = f"user:{get_username()}"
    return _namespace


@contextlib.contextmanager
def every_namespace() -> Iterator[None]:
    """Objects built inside see every run (`namespace(None)`); the setting before, even
    "not chosen yet", is put back afterwards."""
    global _namespace
    previous = _namespace
    _namespace = None
    try:
        yield
    finally:
        _namespace = previous
