"""The one place `ledgerflow ui` reads task logs: a window of a stream by character offset.

Owned by the UI. The logs engineer is changing how logs are stored (compressed pieces);
everything the UI shows of a log goes through `log_page` and `log_chunks` here, over a
connection, so re-pointing the UI at the new storage is a change to this module only.
Offsets count characters of the stream's text; a page never holds more than `limit` of
them, so the task page of a task that printed 55 MB stays a few hundred KB.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

TAIL = 64 * 1024  # characters of each stream the task page shows (its end)
PAGE = 256 * 1024  # characters a page of the log viewer shows
STREAMS = ("stdout", "stderr")


def log_size(conn: sqlite3.Connection, task_pk: int, stream: str) -> int:
    """Characters the task attempt has printed to `stream` so far (0 for none)."""
    row = conn.execute("select length(text) from log where task_id = ? and stream = ?",
                       (task_pk, stream)).fetchone()  # fmt: skip
    return int(row[0] or 0) if row and isinstance(row[0], int) else 0


def log_page(conn: sqlite3.Connection, task_pk: int, stream: str, offset: int,
             limit: int) -> dict[str, Any]:  # fmt: skip
    """Up to `limit` characters of the stream from `offset` (clamped to the text), with the
    stream's total size: {"text", "offset", "end", "size"}; `end` is where the next poll
    starts."""
    size = log_size(conn, task_pk, stream)
    offset = max(0, min(offset, size))
    if offset >= size or limit <= 0:
        return {"text": "", "offset": offset, "end": offset, "size": size}
    row = conn.execute("select substr(text, ?, ?) from log where task_id = ? and stream = ?",
                       (offset + 1, limit, task_pk, stream)).fetchone()  # fmt: skip
    text = str(row[0]) if row and row[0] is not None else ""
    return {"text": text, "offset": offset, "end": offset + len(text), "size": size}


def log_tail(conn: sqlite3.Connection, task_pk: int, stream: str,
             limit: int = TAIL) -> dict[str, Any]:  # fmt: skip
    """The last `limit` characters of the stream (log_page's answer)."""
    return log_page(conn, task_pk, stream, max(0, log_size(conn, task_pk, stream) - limit), limit)


def log_chunks(conn: sqlite3.Connection, task_pk: int, stream: str,
               size: int = 1024 * 1024) -> Iterator[str]:  # fmt: skip
    """The whole stream, `size` characters at a time (the download)."""
    offset = 0
    while True:
        page = log_page(conn, task_pk, stream, offset, size)
        if not page["text"]:
            return
        yield page["text"]
        offset = page["end"]


def log_find(conn: sqlite3.Connection, task_pk: int, stream: str, needle: str) -> int | None:
    """The character offset of the first case-insensitive match of `needle`, or None."""
    if not needle:
        return None
    row = conn.execute("select instr(lower(text), lower(?)) from log where task_id = ? and"
                       " stream = ?", (needle, task_pk, stream)).fetchone()  # fmt: skip
    return int(row[0]) - 1 if row and isinstance(row[0], int) and row[0] > 0 else None
