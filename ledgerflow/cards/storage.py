"""A card's HTML, read back from its blob. The HTML is a blob like any value (a JSON string,
zstd-compressed, stored once per SHA-256), so a copied ledger carries its cards and reading
one never unpickles. What a task hands the writer for each card is a `records.CardRecord`,
written as a `card` row with the task (writes.py) and read back by `reads.card_rows`; the
table's migration is in schema.py, its columns in tables.py."""

from __future__ import annotations

from typing import Any


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
