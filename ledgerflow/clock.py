"""Timestamps as the ledger stores them: ISO-8601 UTC text with microseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """The current UTC time, e.g. '2026-11-26T13:07:36.123456Z'."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> datetime | None:
    """A stored timestamp as a naive local datetime, as Metaflow's client returns them."""
    if not text:
        return None
    aware = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return aware.astimezone().replace(tzinfo=None)
