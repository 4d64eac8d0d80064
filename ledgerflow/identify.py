"""What an SQLite file is, told from its schema alone, before anything is changed in it.

- `CORE_TABLES` are in every ledgerflow ledger; a file with tables but without them belongs
  to another application and is never touched.
- At `user_version` 0 only a file with no tables at all is new (`refuse_unversioned`):
  ledgerflow creates every table and sets the version in one transaction, so tables at
  version 0 were made or edited elsewhere — a received file with its version reset must
  never be "migrated" into one of the user's own ledgers.
- `unknown_objects` lists what a ledger holds beyond what ledgerflow's own migrations create
  (compared by type, name and SQL text): a trigger planted in a file someone sent would run
  on the first write, a view could make every query hang. `doctor` reports them; writers
  refuse such a file.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from .exceptions import LedgerError, LedgerSchemaError
from .schema import SCHEMA_VERSION, migrated_objects, snapshot_objects

CORE_TABLES = frozenset({"meta", "flow", "run", "task", "blob", "blob_chunk", "artifact"})


@functools.cache
def expected_objects(version: int) -> frozenset[tuple[str, str, str | None]]:
    """(type, name, sql) of every schema object migrations 1..version create: from the
    snapshot of the latest schema (ddl_latest.py) where it applies, else by running the
    migrations on an empty database in memory (~5 ms)."""
    objects = snapshot_objects(version)
    if objects is None:
        objects = migrated_objects(version)
    return frozenset((kind, name, sql) for kind, name, _, sql in objects)


def unknown_objects(conn: sqlite3.Connection, version: int) -> list[str]:
    """'trigger x', 'view runs (changed)', ... for objects a ledger of this version lacks."""
    expected = expected_objects(version)
    known_names = {(t, n) for t, n, _ in expected}
    found = []
    for kind, name, sql in conn.execute("select type, name, sql from sqlite_master"):
        if (kind, name, sql) in expected or name == "sqlite_sequence" or name == "sqlite_stat1":
            continue
        found.append(f"{kind} {name}" + (" (changed)" if (kind, name) in known_names else ""))
    return sorted(found)


def stored_json(text: str | None, what: str, default: Any = None) -> Any:
    """A JSON column's value; LedgerError (one line) when a damaged or forged file holds
    something else there."""
    if not text:
        return default
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise LedgerError(f"{what} in the ledger is not valid JSON ({e}); the file is "
                          "damaged: run `ledgerflow doctor`") from None  # fmt: skip


# JSON columns `doctor` checks (table, column).
JSON_COLUMNS = [
    ("run", "params"),
    ("run", "graph_info"),
    ("task", "foreach_stack"),
    ("task", "transition"),
]


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute(
        "select name from sqlite_master where type in ('table', 'view')"
    )}  # fmt: skip


def refuse_unversioned(path: Path, version: int, names: set[str]) -> None:
    """Refuse (one line) a file at user_version 0 that has tables: not a new file (that has
    none), and not a ledger ledgerflow wrote (it sets the version in the transaction that
    creates the tables). Writers would otherwise migrate it and record it as the user's own;
    readers would read it as a ledger."""
    if version != 0 or not names:
        return
    shown = ", ".join(sorted(names)[:5])
    raise LedgerSchemaError(
        f"{path} has tables ({shown}) but no ledger schema version (user_version 0), which "
        "ledgerflow never leaves: it was made or edited by something else, and is refused; "
        "ask whoever sent it for a file made with `ledgerflow export`, or pass another --db"
    )


def identify_readonly(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse (one line) a file that is not a ledger this ledgerflow can read, before a
    query meets a missing table."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        names = table_names(conn)
    except sqlite3.DatabaseError as e:
        raise unreadable(path, e) from None
    if CORE_TABLES <= names:
        refuse_unversioned(path, version, names)
    if not CORE_TABLES <= names:
        shown = ", ".join(sorted(names)[:5]) or "no tables"
        raise LedgerSchemaError(f"{path} is not a ledgerflow ledger (it has {shown}); pass the "
                                "path of a ledger file to --db")  # fmt: skip
    if version > SCHEMA_VERSION:
        raise LedgerSchemaError(
            f"{path} uses ledger schema {version}, newer than this ledgerflow understands "
            f"({SCHEMA_VERSION}); upgrade ledgerflow to open it"
        )


def unreadable(path: Path, error: sqlite3.DatabaseError) -> LedgerError:
    text = str(error)
    if "disk I/O" in text or "full" in text or "unable to open" in text:
        return LedgerError(f"cannot read {path}: {text}; check the disk and the file's "
                           "permissions, then try again")  # fmt: skip
    return LedgerSchemaError(
        f"{path} is not a ledgerflow ledger ({text}); pass the path of a ledger file to "
        "--db, or move this file away"
    )


def undecodable(error: BaseException) -> LedgerError | None:
    """The one line for Python's sqlite3 failing to read text that is not UTF-8 (only a
    damaged or edited file holds such text), naming the column; None for other errors."""
    if not isinstance(error, sqlite3.OperationalError) or "decode to UTF-8" not in str(error):
        return None
    found = re.search(r"column '([A-Za-z0-9_.]{1,64})'", str(error))
    where = f" (column {found.group(1)})" if found else ""
    return LedgerError(
        f"the ledger holds text that is not valid UTF-8{where}: the file is damaged or was "
        "edited outside ledgerflow; `ledgerflow doctor` lists the rows"
    )
