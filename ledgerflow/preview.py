"""Bounded text previews of values, for display and full-text search. Pure: no I/O, and
never a call to a user's `__repr__` (a hostile or slow one cannot hurt a task)."""

from __future__ import annotations

from typing import Any

from .codec import type_name

PREVIEW_MAX = 2000
_PREVIEW_ITEMS = 50


def preview(value: Any, limit: int = PREVIEW_MAX) -> str:
    """A bounded text preview of a value for display and search. Never calls user __repr__.

    Strings are truncated, numbers written out, containers contribute their keys and scalar
    leaves, arrays and data frames their type, shape and column names, anything else its
    type name. Never raises.
    """
    out: list[str] = []
    budget = [limit]

    def emit(text: str) -> None:
        if budget[0] <= 0:
            return
        text = text[: budget[0]]
        out.append(text)
        budget[0] -= len(text) + 1

    def walk(v: Any, depth: int) -> None:
        if budget[0] <= 0 or depth > 8:
            return
        t = type(v)
        if v is None or t in (bool, int, float, complex):
            emit(repr(v) if t is not int or abs(v) < 10**50 else f"<int of {v.bit_length()} bits>")
        elif t is str:
            emit(v)
        elif t in (bytes, bytearray, memoryview):
            emit(f"<{t.__name__} of {len(v)} bytes>")
        elif t in (list, tuple, set, frozenset):
            for i, item in enumerate(v):
                if i >= _PREVIEW_ITEMS:
                    emit(f"... {len(v)} items")
                    break
                walk(item, depth + 1)
        elif t is dict or isinstance(v, dict):
            for i, (k, item) in enumerate(v.items()):
                if i >= _PREVIEW_ITEMS:
                    emit(f"... {len(v)} keys")
                    break
                walk(k, depth + 1)
                walk(item, depth + 1)
        else:
            described = _describe_array_like(v)
            emit(described or type_name(v))

    try:
        walk(value, 0)
    except Exception:  # noqa: BLE001 - a preview must never fail a task
        return type_name(value)[:limit]
    return storable_text(" ".join(out)[:limit])


def storable_text(text: str) -> str:
    """Text SQLite can store (UTF-8): a lone surrogate, as os.fsdecode gives for a file name
    that is not UTF-8, is written as its escape (\\udcff) instead of failing the write."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _describe_array_like(v: Any) -> str | None:
    """Type, shape and columns of numpy arrays / pandas frames, read without calling repr."""
    t = type(v)
    mod = t.__module__ or ""
    if not (mod.startswith("numpy") or mod.startswith("pandas")):
        return None
    parts = [type_name(v)]
    shape = getattr(v, "shape", None)
    if isinstance(shape, tuple):
        parts.append("shape=" + "x".join(str(int(s)) for s in shape))
    dtype = getattr(v, "dtype", None)
    if dtype is not None and mod.startswith("numpy"):
        parts.append(f"dtype={dtype}")
    columns = getattr(v, "columns", None)
    if columns is not None:
        try:
            parts.append("columns: " + " ".join(str(c) for c in list(columns)[:_PREVIEW_ITEMS]))
        except Exception:  # noqa: BLE001, S110 - a preview must never fail a task
            pass
    return " ".join(parts)
