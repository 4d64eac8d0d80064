"""Read-only SQL over a ledger: `ledgerflow.sql("select ...", params)`.

The connection is opened with `mode=ro` and `PRAGMA query_only`, so a write is refused by
SQLite itself, whatever the statement looks like. A query (or a hostile view in a file
someone sent) cannot run forever: a progress handler stops it after `timeout` seconds
(default 60), and at once on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .exceptions import LedgerError, QueryTimeout, SQLError
from .ledger_choice import ledger_path
from .location import existing_ledger
from .structs import field, struct


@struct
class SQLResult:
    """Rows of a query: iterate for dicts, or use `.columns` and `.rows`."""

    columns: list[str]
    rows: list[tuple[Any, ...]] = field(factory=list)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (dict(zip(self.columns, row)) for row in self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(zip(self.columns, self.rows[index]))


def connect_readonly(path: Any = None) -> sqlite3.Connection:
    """A read-only connection to a ledger file (never creates one); `path` as
    ledger_choice.ledger_path() takes it."""
    resolved = existing_ledger(
        ledger_path(path), "run a flow first or pass the path of an existing ledger"
    )
    from .connections import readonly_target, warn_stale
    from .identify import identify_readonly

    resolved = Path(resolved).absolute()
    target, stale = readonly_target(resolved)
    if stale:
        warn_stale(resolved)
    conn = sqlite3.connect(target, uri=True, check_same_thread=False)
    try:
        conn.execute("pragma query_only = 1")
        conn.execute("pragma trusted_schema = 0")
        conn.execute("pragma busy_timeout = 5000")
        identify_readonly(conn, resolved)
    except BaseException:
        conn.close()
        raise
    conn.set_authorizer(_authorize)
    return conn


DEFAULT_TIMEOUT = 60.0  # seconds a sql() query may run
_CHECK_EVERY = 10_000  # SQLite VM steps between checks of the clock (and of Ctrl-C)


@contextlib.contextmanager
def time_limit(conn: sqlite3.Connection, seconds: float | None) -> Any:
    """Stop the statements run inside after `seconds` (QueryTimeout) or on Ctrl-C
    (KeyboardInterrupt, raised at once: the progress handler lets Python see the signal)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    state = {"timed_out": False}

    def check() -> int:
        if deadline is not None and time.monotonic() > deadline:
            state["timed_out"] = True
            return 1
        return 0  # a KeyboardInterrupt raised here aborts the statement too

    conn.set_progress_handler(check, _CHECK_EVERY)
    try:
        yield
    except sqlite3.OperationalError as e:
        if "interrupted" not in str(e):
            raise
        if state["timed_out"]:
            raise QueryTimeout(
                f"the query ran longer than {seconds:g}s and was stopped; narrow it, or allow "
                "more time with --timeout SECONDS (timeout=... in Python)"
            ) from None
        raise KeyboardInterrupt from None
    finally:
        conn.set_progress_handler(None, 0)


_READ_PRAGMAS = {
    "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "integrity_check", "quick_check", "table_list",
}  # fmt: skip


def _authorize(action: int, arg1: Any, arg2: Any, *_: Any) -> int:
    # ATTACH could create files elsewhere, and a pragma with a value changes settings.
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and arg1 not in _READ_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def sql(
    query: str,
    params: Sequence[Any] | dict[str, Any] = (),
    *,
    ledger: Any = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> SQLResult:
    """Run one read-only SQL statement on the ledger and return its rows. `ledger`: a path
    or a `Ledger`; by default the ledger `use_ledger()` chose (see ledger_choice.py).

    >>> best = sql("select run_id, value from artifacts where name = ? order by value desc",
    ...            ["accuracy"])

    `timeout` (seconds, None for no limit) stops a query that runs longer (QueryTimeout).
    """
    conn = connect_readonly(ledger)
    try:
        try:
            with time_limit(conn, timeout):
                cur = conn.execute(query, params)
                rows = cur.fetchall()
        except sqlite3.Warning as e:  # e.g. "You can only execute one statement at a time."
            raise SQLError(f"{e}; pass a single SQL statement") from None
        except sqlite3.ProgrammingError as e:
            hint = (
                "pass a single SQL statement"
                if "one statement" in str(e)
                else "check the parameters given for the query's placeholders"
            )
            raise SQLError(f"SQL error: {e} ({hint})") from None
        except sqlite3.DatabaseError as e:
            text = str(e)
            if "not authorized" in text:
                raise SQLError(
                    "sql() refuses ATTACH, DETACH and pragmas that set a value; run plain "
                    "select statements"
                ) from None
            if "readonly" in text or "read-only" in text or "query_only" in text:
                raise SQLError(
                    "sql() is read-only: this statement would change the ledger and was "
                    "refused; use select statements only"
                ) from None
            if isinstance(e, sqlite3.OperationalError):
                raise SQLError(f"SQL error: {text}") from None
            raise LedgerError(f"cannot read the ledger: {text}") from None
        columns = [d[0] for d in cur.description or []]
        return SQLResult(columns, rows)
    finally:
        conn.close()
