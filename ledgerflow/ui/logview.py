"""The one place `ledgerflow ui` reads task logs: a window of a stream by character offset.

Owned by the UI. The logs engineer is changing how logs are stored (compressed pieces);
everything the UI shows of a log goes through the functions here (over the library's reads:
`reads.log_length`, `log_slice`, `log_first_match`), so re-pointing the UI at the new
storage is a change to this module only.
Offsets count characters of the stream's text; a page never holds more than `limit` of
them, so the task page of a task that printed 55 MB stays a few hundred KB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import reads

TAIL = 64 * 1024  # characters of each stream the task page shows (its end)
PAGE = 256 * 1024  # characters a page of the log viewer shows
STREAMS = ("stdout", "stderr")


def log_size(ledger: Any, task_pk: int, stream: str) -> int:
    """Characters the task attempt has printed to `stream` so far (0 for none)."""
    return reads.log_length(ledger, task_pk, stream)


def log_page(ledger: Any, task_pk: int, stream: str, offset: int,
             limit: int) -> dict[str, Any]:  # fmt: skip
    """Up to `limit` characters of the stream from `offset` (clamped to the text), with the
    stream's total size: {"text", "offset", "end", "size"}; `end` is where the next poll
    starts."""
    size = log_size(ledger, task_pk, stream)
    offset = max(0, min(offset, size))
    if offset >= size or limit <= 0:
        return {"text": "", "offset": offset, "end": offset, "size": size}
    text = reads.log_slice(ledger, task_pk, stream, offset, limit)
    return {"text": text, "offset": offset, "end": offset + len(text), "size": size}


def log_tail(ledger: Any, task_pk: int, stream: str,
             limit: int = TAIL) -> dict[str, Any]:  # fmt: skip
    """The last `limit` characters of the stream (log_page's answer)."""
    return log_page(
        ledger, task_pk, stream, max(0, log_size(ledger, task_pk, stream) - limit), limit
    )


def log_chunks(ledger: Any, task_pk: int, stream: str,
               size: int = 1024 * 1024) -> Iterator[str]:  # fmt: skip
    """The whole stream, `size` characters at a time (the download)."""
    offset = 0
    while True:
        page = log_page(ledger, task_pk, stream, offset, size)
        if not page["text"]:
            return
        yield page["text"]
        offset = page["end"]


def log_find(ledger: Any, task_pk: int, stream: str, needle: str) -> int | None:
    """The character offset of the first case-insensitive match of `needle`, or None."""
    if not needle:
        return None
    return reads.log_first_match(ledger, task_pk, stream, needle)
