"""Trust given to a *source*: the runs `import` copied into one of the user's own ledgers
from another ledger (named by the ledger id it declared, as `imported_run` records it).

`ledgerflow trust --source ID` marks the runs already imported from ID as trusted (so
import-then-trust ends where trust-then-import does), `--revoke --source ID` takes that
back, `--list` shows each source with its runs. These write only the user's own ledger's
`imported_run` table, which the copy itself wrote (nothing in a source file decides it);
the store of trusted *files* is trust_store.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import writes
from .exceptions import LedgerflowError
from .ledger import Ledger
from .sharing import imported_runs
from .trust_store import ledger_is_own, run_trusted, shown_source


def sources(ledger: Ledger) -> list[dict[str, Any]]:
    """Each source of imported runs: source, runs, trusted (how many load), last import."""
    runs = imported_runs(ledger)
    counts = Counter(r["source"] for r in runs)
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        entry = found.setdefault(run["source"], {"source": run["source"], "runs": 0,
                                                 "trusted": 0, "imported_at": ""})  # fmt: skip
        entry["runs"] = counts[run["source"]]
        entry["trusted"] += int(run_trusted(ledger, run["pk"]))
        entry["imported_at"] = max(entry["imported_at"], str(run["imported_at"] or ""))
    return list(found.values())


def set_source_trust(ledger: Ledger, source: str, trusted: bool) -> list[str]:
    """Trust (or stop trusting) the runs imported into this own ledger from `source`; the
    pathspecs changed. One line (LedgerflowError) when none was imported from it."""
    if not ledger_is_own(ledger):
        raise LedgerflowError(
            f"{ledger.path} is not one of your own ledgers (ledgerflow did not create it "
            "here), so trust given to the sources of its runs would not count; trust the "
            f"file itself if you trust it: `ledgerflow trust {ledger.path}`"
        )
    runs = imported_runs(ledger, source)
    if not runs:
        raise LedgerflowError(
            f"no run in {ledger.path} was imported from {shown_source(source)}; "
            f"`ledgerflow --db {ledger.path} trust --list` names the sources"
        )
    with ledger.write() as conn:
        writes.trust_source(conn, source, trusted)
    return [r["pathspec"] for r in runs]
