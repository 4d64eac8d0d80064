"""The one place `ledgerflow ui` reads task logs: a window of a stream by byte offset.

Logs are stored as compressed pieces (`ledgerflow/logstore.py`); everything the UI shows of
a log goes through the functions here, over `logstore.log_page`, which decompresses only the
pieces a window spans. Offsets count UTF-8 bytes of the stream's text (a window never starts
or ends inside a character); a page never holds more than `limit` of them, so the task page
of a task that printed 55 MB stays a few hundred KB, and a live page polls from the `end`
it was given.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import logstore

TAIL = 64 * 1024  # bytes of each stream the task page shows (its end)
PAGE = 256 * 1024  # bytes a page of the log viewer shows
STREAMS = ("stdout", "stderr")
_FIND_WINDOW = 1024 * 1024  # bytes searched at a time by log_find


def log_size(ledger: Any, task_pk: int, stream: str) -> int:
    """Bytes the task attempt has printed to `stream` so far (0 for none)."""
    return logstore.total_bytes(ledger.conn, task_pk, stream)


def log_page(ledger: Any, task_pk: int, stream: str, offset: int,
             limit: int) -> dict[str, Any]:  # fmt: skip
    """Up to `limit` bytes of the stream from `offset` (clamped to the text), with the
    stream's total size: {"text", "offset", "end", "size"}; `end` is where the next poll
    starts."""
    if limit <= 0:
        size = log_size(ledger, task_pk, stream)
        offset = max(0, min(offset, size))
        return {"text": "", "offset": offset, "end": offset, "size": size}
    page = logstore.log_page(ledger.conn, task_pk, stream, max(0, offset), max_bytes=limit)
    return {"text": page.text, "offset": page.start, "end": page.end, "size": page.total_bytes}


def log_tail(ledger: Any, task_pk: int, stream: str,
             limit: int = TAIL) -> dict[str, Any]:  # fmt: skip
    """The last `limit` bytes of the stream, from the first whole line in them."""
    page = logstore.log_page(ledger.conn, task_pk, stream, max_bytes=limit, tail=True)
    return {"text": page.text, "offset": page.start, "end": page.end, "size": page.total_bytes}


def log_chunks(ledger: Any, task_pk: int, stream: str,
               size: int = 1024 * 1024) -> Iterator[str]:  # fmt: skip
    """The whole stream, about `size` bytes at a time (the download)."""
    offset = 0
    while True:
        page = log_page(ledger, task_pk, stream, offset, size)
        if not page["text"] or page["end"] <= offset:
            return
        yield page["text"]
        offset = page["end"]


def log_find(ledger: Any, task_pk: int, stream: str, needle: str) -> int | None:
    """The byte offset of the first case-insensitive match of `needle`, or None: the stream
    is read a window at a time (windows overlap by the needle's length, so a match across
    two of them is found), never whole."""
    if not needle:
        return None
    wanted = needle.lower()
    overlap = len(wanted.encode("utf-8", "surrogatepass"))
    offset = 0
    while True:
        page = logstore.log_page(ledger.conn, task_pk, stream, offset, max_bytes=_FIND_WINDOW)
        if not page.text:
            return None
        at = page.text.lower().find(wanted)
        if at >= 0:
            return page.start + len(page.text[:at].encode("utf-8", "surrogatepass"))
        if page.end >= page.total_bytes:
            return None
        offset = max(page.end - overlap, offset + 1)
