"""The one place `ledgerflow ui` reads values themselves, not their previews.

JSON-encoded values are decoded for display (decoding JSON runs nothing), but only when the
blob's own raw size is small: the blob store fills a buffer of exactly that size and refuses
a blob whose chunks decompress to anything else, so what is decoded is bounded by what
decompression produces, never by the artifact row's `size` (a received file can write any
number there). A pickled value is loaded only when the user asks for it on the artifact
page, and only if the Client API's trust rule allows it (`trust_store.require_trust`, asked
by the blob store only when the blob it decodes is a pickle: one of the user's own ledgers,
or `--trust` / `LEDGERFLOW_TRUST=1` / `ledgerflow trust FILE`); otherwise the page says why.
`structure_html` shows a decoded JSON value's shape (keys, lengths, a table of records).
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any

from ..trust_store import require_trust
from .layout import esc

SHOW_JSON_UP_TO = 256 * 1024  # bytes of JSON decoded for display without asking


def json_value(ledger: Any, sha: str) -> tuple[bool, Any]:
    """(True, value) for a JSON blob of at most SHOW_JSON_UP_TO raw bytes; (False, why) for
    anything else (a pickle, too large, damaged). Never decodes past the bound."""
    from ..exceptions import LedgerflowError
    from . import queries as q

    facts = q.blob_facts(ledger, sha)
    if facts is None:
        return False, "its blob is missing from the ledger"
    if facts["encoding"] != "json":
        return False, "it is not JSON"
    size = facts["raw_size"]
    if not isinstance(size, int) or size > SHOW_JSON_UP_TO:
        return False, f"it is {size:,} bytes, too large to show here; use the Client API" if (
            isinstance(size, int)
        ) else "its blob row is damaged (a size that is not a number)"
    try:
        encoding, raw = ledger.read_raw(sha)  # exactly raw_size bytes, or refused
        if encoding != "json":
            return False, "it is not JSON"
        return True, json.loads(bytes(raw).decode("utf-8"))
    except (LedgerflowError, ValueError, RecursionError) as e:
        return False, f"it cannot be read: {e}"


def json_text(ledger: Any, art: dict[str, Any]) -> str | None:
    """A JSON-encoded value, pretty-printed; None for pickles and large values."""
    if art["encoding"] != "json":
        return None
    ok, value = json_value(ledger, art["sha"])
    if not ok:
        return None
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except RecursionError:
        return None


def structure_html(value: Any, depth: int = 0) -> str:
    """A decoded JSON value's structure as HTML: a dict as a table of key / type / value,
    a list of records as a table with a row per record (the first 10), other lists by
    length and first items. Bounded: 3 levels, 50 keys, 10 rows."""
    if isinstance(value, dict):
        if depth >= 3:
            return f'<span class="muted">dict of {len(value)} keys</span>'
        rows = "".join(
            f'<tr><th>{esc(k)}</th><td class="muted">{esc(_kind(v))}</td>'
            f"<td>{structure_html(v, depth + 1)}</td></tr>"
            for k, v in list(value.items())[:50]
        )
        more = f'<tr><td colspan="3" class="muted">… {len(value) - 50} more keys</td></tr>' if (
            len(value) > 50) else ""  # fmt: skip
        return f'<table class="struct">{rows}{more}</table>'
    if isinstance(value, list):
        records = value and all(isinstance(v, dict) for v in value[:10])
        if records and depth < 3:
            columns = list(dict.fromkeys(k for v in value[:10] for k in v))[:20]
            head = "".join(f"<th>{esc(c)}</th>" for c in columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(_short(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                for r in value[:10]
            )
            note = f'<div class="muted">{len(value):,} records × {len(columns)} columns</div>'
            return f'{note}<table class="struct"><tr>{head}</tr>{body}</table>'
        items = ", ".join(esc(_short(v)) for v in value[:10])
        tail = ", …" if len(value) > 10 else ""
        return f'<span class="muted">{len(value):,} items:</span> [{items}{tail}]'
    return esc(_short(value))


def _kind(value: Any) -> str:
    if isinstance(value, list | dict):
        return f"{type(value).__name__}[{len(value)}]"
    return type(value).__name__ if value is not None else "null"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_pickled(ledger: Any, run_pk: int, pathspec: str, sha: str) -> str:
    """repr() of a value (bounded); a pickle only after the trust check (UntrustedLedgerError
    when the ledger is not trusted), decided on the blob actually decoded."""
    value = ledger.load(sha, before_unpickle=lambda: require_trust(ledger, run_pk, pathspec))
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlevel = (
        5000,
        2000,
        200,
        200,
        6,
    )
    return short.repr(value)


_ARRAY_LIKE = re.compile(r"^(?P<type>(?:numpy|pandas)\S*) shape=(?P<shape>[\dx]+)"
                         r"(?: dtype=(?P<dtype>\S+))?(?: columns: (?P<columns>.*?))?"
                         r"(?: (?:rows|values): (?P<sample>.*))?$")  # fmt: skip


def preview_structure_html(preview: str | None) -> str:
    """A pickled array's or data frame's stored preview ("pandas...DataFrame shape=3x2
    columns: a b rows: [1, x]; [2, y]", as preview.py writes it without calling repr) as a
    small table of its type, shape, dtype, columns and first rows or values; '' for any
    other preview. Nothing is unpickled."""
    found = _ARRAY_LIKE.match(preview or "")
    if found is None:
        return ""
    rows = [("type", found["type"]), ("shape", " × ".join(found["shape"].split("x")))]
    if found["dtype"]:
        rows.append(("dtype", found["dtype"]))
    if found["columns"]:
        rows.append(("columns", ", ".join(found["columns"].split())))
    if found["sample"]:
        rows.append(("first rows" if found["columns"] else "first values", found["sample"]))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="struct">{body}</table>'
