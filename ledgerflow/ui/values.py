"""The one place `ledgerflow ui` reads values themselves, not their previews.

JSON-encoded values are decoded for display (decoding JSON runs nothing). A pickled value
is loaded only when the user asks for it on the artifact page, and only if the Client
API's trust rule allows it (`trust_store.require_trust`, asked by the blob store only when
the blob it decodes is a pickle: one of the user's own ledgers, or `--trust` /
`LEDGERFLOW_TRUST=1` / `ledgerflow trust FILE`); otherwise the page says why not.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

from ..trust_store import require_trust

SHOW_JSON_UP_TO = 256 * 1024  # bytes of JSON decoded for display without asking


def json_text(ledger: Any, art: dict[str, Any]) -> str | None:
    """A JSON-encoded value, pretty-printed; None for pickles and large values."""
    if art["encoding"] != "json" or art["size"] > SHOW_JSON_UP_TO:
        return None
    encoding, raw = ledger.read_raw(art["sha"])
    if encoding != "json":  # the blob row disagrees with the artifact row: decode nothing
        return None
    return json.dumps(json.loads(bytes(raw).decode("utf-8")), indent=2, ensure_ascii=False)


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
