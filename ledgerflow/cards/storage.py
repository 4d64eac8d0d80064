"""Cards in the ledger: the `card` table's rows (one per card a task attempt rendered; the
table's migration is in schema.py, its columns in tables.py), written with the task, and reads. The HTML itself is a blob like any value (a JSON
string, zstd-compressed, stored once per SHA-256), so a copied ledger carries its cards
and reading one never unpickles."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from ..structs import struct


@struct
class CardRecord:
    """One card of a task attempt, as the task hands it to the writer."""

    type: str
    id: str | None = None
    sha: str | None = None  # the HTML blob; None when rendering failed and save_errors=False
    error: str | None = None  # why rendering failed (the HTML then shows it, save_errors=True)


def write_card_rows(conn: sqlite3.Connection, task_pk: int, cards: Iterable[CardRecord]) -> None:
    """Insert a task attempt's card rows (inside the writer's transaction, after its blobs)."""
    conn.executemany(
        "insert into card(task_id, seq, type, card_id, sha, error) values (?, ?, ?, ?, ?, ?)",
        [(task_pk, seq, c.type, c.id, c.sha, c.error) for seq, c in enumerate(cards)],
    )


def has_card_table(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'card'"
        ).fetchone()
        is not None
    )


def card_rows(conn: sqlite3.Connection, task_pks: list[int]) -> list[dict[str, Any]]:
    """The cards of some task attempts, in the order they were declared."""
    if not task_pks or not has_card_table(conn):
        return []
    marks = ",".join("?" * len(task_pks))
    cur = conn.execute(
        "select id, task_id, seq, type, card_id, sha, error from card "
        f"where task_id in ({marks}) order by task_id, seq",
        task_pks,
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def copy_card_rows(source: Any, conn: sqlite3.Connection, task_map: dict[int, int],
                   copy_blob: Callable[[str], None]) -> None:  # fmt: skip
    """Export/import: copy the cards of copied tasks (and their HTML blobs) into `conn`."""
    if not has_card_table(source.conn) or not has_card_table(conn):
        return
    for old, new in task_map.items():
        for row in card_rows(source.conn, [old]):
            if row["sha"]:
                copy_blob(row["sha"])
            conn.execute(
                "insert into card(task_id, seq, type, card_id, sha, error) "
                "values (?, ?, ?, ?, ?, ?)",
                (new, row["seq"], row["type"], row["card_id"], row["sha"], row["error"]),
            )


def read_card_html(ledger: Any, sha: str) -> str:
    """A card's HTML from its blob. Cards are JSON strings: anything else is refused, so
    reading a card never unpickles (a hostile ledger could put a pickle there)."""
    import json

    encoding, raw = ledger.read_raw(sha)
    if encoding != "json":
        raise ValueError(f"card blob {sha[:12]} is not stored as text; refusing to decode it")
    text = json.loads(bytes(raw).decode("utf-8"))
    if not isinstance(text, str):
        raise ValueError(f"card blob {sha[:12]} does not hold HTML text")
    return text
