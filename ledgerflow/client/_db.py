"""The client's only way to read the ledger: one parameterized SQL statement at a time.

Every read the Client API makes goes through `rows()`, so a test can see (and
`EXPLAIN QUERY PLAN`) each statement by setting `trace`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..ledger import Ledger

# Called with (sql, params) before each statement runs; None to switch off.
trace: Callable[[str, tuple[Any, ...]], None] | None = None


def rows(ledger: Ledger, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """All result rows as dicts keyed by column name."""
    params = tuple(params)
    if trace is not None:
        trace(sql, params)
    cur = ledger.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one(ledger: Ledger, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
    """The first result row, or None."""
    found = rows(ledger, sql, params)
    return found[0] if found else None
