"""Bounded text previews of values, for display and full-text search. Pure: no I/O, and
never a call to a user's `__repr__` (a hostile or slow one cannot hurt a task)."""

from __future__ import annotations

from typing import Any

from .codec import type_name

PREVIEW_MAX = 2000
_PREVIEW_ITEMS = 50


def preview(value: Any, limit: int = PREVIEW_MAX) -> str:
    """A bounded text preview of a value for display and search. Never calls user __repr__.

    Shows structure: strings as they are (inside a container too), numbers written out,
    lists as `[a, b, ...]`, dicts as `{key: value, ...}`, arrays and data frames as
    `<type shape=... dtype=... columns: ...>` (bare at the top level), anything else its type
    name. Every word of the value's keys and scalar leaves stays in it, so it is searched.
    Never raises.
    """
    # Plain scalars, most artifacts, without the walk's closures (what walk() gives them).
    t = type(value)
    if limit > 0:
        if t is str:
            return storable_text(value[:limit])
        if t is float or t is bool or value is None or (t is int and abs(value) < 10**50):
            return repr(value)[:limit]
    budget = [limit]

    def take(text: str) -> str:
        budget[0] -= len(text)
        return text

    def walk(v: Any, depth: int) -> str:
        if budget[0] <= 0 or depth > 8:
            return "…"
        t = type(v)
        if v is None or t in (bool, int, float, complex):
            return take(repr(v) if t is not int or abs(v) < 10**50
                        else f"<int of {v.bit_length()} bits>")  # fmt: skip
        if t is str:
            return take(v[: max(budget[0], 0)])
        if t in (bytes, bytearray, memoryview):
            return take(f"<{t.__name__} of {len(v)} bytes>")
        if t in (list, tuple, set, frozenset):
            opening, closing = ("(", ")") if t is tuple else ("[", "]")
            return _seq(opening, closing, v, len(v), lambda item: walk(item, depth + 1))
        if t is dict or isinstance(v, dict):
            return _seq("{", "}", v.items(), len(v),
                        lambda kv: f"{walk(kv[0], depth + 1)}: {walk(kv[1], depth + 1)}")  # fmt: skip
        described = _describe_array_like(v) or type_name(v)
        return take(described if depth == 0 else f"<{described}>")

    def _seq(opening: str, closing: str, items: Any, n: int, show: Any) -> str:
        parts = []
        for i, item in enumerate(items):
            if i >= _PREVIEW_ITEMS or budget[0] <= 0:
                parts.append(f"… {n} items")
                break
            parts.append(show(item))
            take("  ")
        return f"{opening}{', '.join(parts)}{closing}"

    try:
        text = walk(value, 0)
    except Exception:  # noqa: BLE001 - a preview must never fail a task
        return type_name(value)[:limit]
    return storable_text(text[:limit])


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
    try:
        parts.append(_first_values(v, mod))
    except Exception:  # noqa: BLE001, S110 - a preview must never fail a task
        pass
    return " ".join(p for p in parts if p)


_SAMPLE_ROWS = 3  # rows of a data frame a preview shows
_SAMPLE_VALUES = 6  # values of an array a preview shows


def _first_values(v: Any, mod: str) -> str:
    """A few rows of a data frame ("rows: [1, a]; [2, b]") or values of an array
    ("values: 0.5 1.5 ..."), plain scalars only (anything else by its type name)."""
    if mod.startswith("pandas") and hasattr(v, "itertuples") and hasattr(v, "head"):
        rows = ["[" + ", ".join(_scalar(x) for x in row) + "]"
                for row in v.head(_SAMPLE_ROWS).itertuples(index=False)]  # fmt: skip
        return "rows: " + "; ".join(rows) if rows else ""
    if mod.startswith("numpy") and hasattr(v, "flat") and int(getattr(v, "size", 0) or 0) > 0:
        first = v.flat[:_SAMPLE_VALUES].tolist()  # flat: no copy of a non-contiguous array
        more = " ..." if v.size > _SAMPLE_VALUES else ""
        return "values: " + " ".join(_scalar(x) for x in first) + more
    return ""


def _scalar(x: Any) -> str:
    if x is None or type(x) in (bool, int, float, complex, str):
        return str(x)[:40]
    module = type(x).__module__ or ""
    if module.startswith("numpy") and hasattr(x, "item"):  # a numpy scalar
        item = x.item()
        if item is None or type(item) in (bool, int, float, complex, str):
            return str(item)[:40]
    return type_name(x)
