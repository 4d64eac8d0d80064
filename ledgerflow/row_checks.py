"""What a received ledger's rows must be before `import` copies them or `doctor` calls the
file healthy. SQLite stores whatever a row is given (text in an INTEGER column, bytes that
are not UTF-8 in a TEXT one), and whoever sent the file wrote every row:

- every column of ledgerflow's tables holds the storage type its schema declares (NULL only
  where the column allows it): an artifact `size` of `'<script>...'` would reach every page
  and command that shows it, a text `size` breaks `stats`;
- every text value is valid UTF-8 (Python's sqlite3 cannot even read one that is not);
- the timestamps that order runs and tasks (`latest_run`, `latest_successful_run`,
  `rm --keep`, task lists) are in the stored form and not later than now: a run stamped
  9999 would otherwise be every flow's latest run and outrank the user's own in
  `rm --keep 1` (an imported run is at most as new as the moment it was imported).

The checks are generic over the schema ledgerflow's migrations create (identify.py), one
pass over each table; nothing is decoded beyond text, nothing unpickled.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from .clock import now_iso

# (table, column) of the timestamps that order what users see, and what upkeep keeps. (A
# heartbeat orders nothing, and one from the future is no sign of life: see liveness.py.)
ORDERING_TIMESTAMPS = (
    ("run", "created_at"), ("run", "finished_at"), ("task", "started_at"),
    ("task", "finished_at"),
)  # fmt: skip
_STORED_GLOB = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z"  # noqa: E501
_TYPES = {"INTEGER": "integer", "TEXT": "text", "BLOB": "blob"}
_SKIPPED = re.compile(r"^(sqlite_|artifact_fts|task_fts)")


@functools.cache
def declared_columns() -> dict[str, list[tuple[str, str, bool]]]:
    """table -> [(column, storage type, nullable)] for the tables ledgerflow creates (not
    the search index's, which `doctor` checks and rebuilds on its own)."""
    from .schema import MIGRATIONS

    conn = sqlite3.connect(":memory:")
    try:
        for migration in MIGRATIONS:
            migration(conn)
        tables = [name for (name,) in conn.execute(
            "select name from sqlite_master where type = 'table' and sql not like "
            "'CREATE VIRTUAL%' order by name") if not _SKIPPED.match(name)]  # fmt: skip
        found = {}
        for table in tables:
            info = conn.execute(f'pragma table_info("{table}")').fetchall()
            found[table] = [(name, _TYPES[kind.upper()], not notnull and not pk)
                            for _, name, kind, notnull, _, pk in info
                            if kind.upper() in _TYPES]  # fmt: skip
        return found
    finally:
        conn.close()


def row_problems(conn: sqlite3.Connection, *, now: str | None = None,
                 per_column: int = 3) -> list[str]:  # fmt: skip
    """One line per (table, column) holding wrong values, each naming the table, the column
    and the first rows (by rowid). Empty: every row is what the schema says."""
    now = now or now_iso()
    present = {name for (name,) in conn.execute("select name from sqlite_master where "
                                                "type = 'table'")}  # fmt: skip
    problems: list[str] = []
    for table, columns in declared_columns().items():
        if table not in present:
            continue
        have = {row[1] for row in conn.execute(f'pragma table_info("{table}")')}
        columns = [c for c in columns if c[0] in have]
        problems += _type_problems(conn, table, columns, per_column)
        problems += _utf8_problems(conn, table, [c for c, kind, _ in columns if kind == "text"],
                                   per_column)  # fmt: skip
    for table, column in ORDERING_TIMESTAMPS:
        if table in present:
            problems += _time_problems(conn, table, column, now, per_column)
    return problems


def _label(table: str) -> str:
    """SQL naming a row: 'row 12', or for blobs 'blob 60f385c388ef' (only when the sha is
    hex: the label is printed, and must be readable whatever the file holds)."""
    if table in ("blob", "blob_chunk"):
        return ("case when typeof(sha) = 'text' and sha not glob '*[^0-9a-f]*' then 'blob ' || "
                "substr(sha, 1, 12) else 'row ' || rowid end")  # fmt: skip
    return "'row ' || rowid"


def _rows(labels: list[str], more: bool) -> str:
    return ", ".join(labels) + (" and more" if more else "")


def _type_problems(conn: sqlite3.Connection, table: str,
                   columns: list[tuple[str, str, bool]], limit: int) -> list[str]:  # fmt: skip
    """One pass over the table: the rows where any column holds another storage type."""
    if not columns:
        return []
    allowed = {c: (kind, "null") if null else (kind,) for c, kind, null in columns}
    wrong = [f'typeof("{c}") not in ({", ".join(repr(k) for k in allowed[c])})'
             for c, _, _ in columns]  # fmt: skip
    kinds = ", ".join(f'typeof("{c}")' for c, _, _ in columns)
    bad: dict[str, tuple[list[str], set[str]]] = {}
    for rowid, *types in conn.execute(
        f'select {_label(table)}, {kinds} from "{table}" where {" or ".join(wrong)}'
    ):
        for (column, _, _), found in zip(columns, types, strict=True):
            if found not in allowed[column]:
                rows, seen = bad.setdefault(column, ([], set()))
                rows.append(rowid)
                seen.add(found)
    declared = {c: kind for c, kind, _ in columns}
    return [f"{table}.{column} holds {'/'.join(sorted(seen))} where {_a(declared[column])} "
            f"belongs ({_rows(rows[:limit], len(rows) > limit)})"
            for column, (rows, seen) in bad.items()]  # fmt: skip


def _a(kind: str) -> str:
    return {"integer": "an integer", "text": "text", "blob": "bytes"}[kind]


def _utf8_problems(conn: sqlite3.Connection, table: str, columns: list[str],
                   limit: int) -> list[str]:  # fmt: skip
    problems = []
    for column in columns:
        rows: list[str] = []
        for rowid, raw in _text_bytes(conn, table, column):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                rows.append(rowid)
                if len(rows) > limit:
                    break
        if rows:
            problems.append(f"{table}.{column} holds text that is not valid UTF-8 "
                            f"({_rows(rows[:limit], len(rows) > limit)})")  # fmt: skip
    return problems


def _text_bytes(conn: sqlite3.Connection, table: str, column: str) -> Iterator[tuple[str, bytes]]:
    """(rowid, bytes) of every text value in a column, one row in memory at a time."""
    yield from conn.execute(
        f'select {_label(table)}, cast("{column}" as blob) from "{table}" where '
        f"typeof(\"{column}\") = 'text'"
    )


def _time_problems(conn: sqlite3.Connection, table: str, column: str, now: str,
                   limit: int) -> list[str]:  # fmt: skip
    found: list[tuple[str, Any]] = conn.execute(
        f'select {_label(table)}, typeof("{column}") = \'text\' and "{column}" glob ? from "{table}" '
        f'where "{column}" is not null and (typeof("{column}") != \'text\' or "{column}" not '
        f'glob ? or "{column}" > ?) limit ?', (_STORED_GLOB, _STORED_GLOB, now, limit + 1),
    ).fetchall()  # fmt: skip
    problems = []
    malformed = [rowid for rowid, ok in found if not ok]
    future = [rowid for rowid, ok in found if ok]
    more = len(found) > limit
    if malformed:
        problems.append(f"{table}.{column} is not a stored timestamp (YYYY-MM-DDTHH:MM:SS."
                        f"ffffffZ) ({_rows(malformed[:limit], more)})")  # fmt: skip
    if future:
        problems.append(
            f"{table}.{column} is later than now, {now} ({_rows(future[:limit], more)})"
        )
    return problems
