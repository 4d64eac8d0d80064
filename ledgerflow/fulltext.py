"""Full-text search over artifacts: `ledgerflow.search("resnet50", flow="Train")`.

The index (`artifact_fts`, FTS5) holds each produced artifact's name, flow, step and a
bounded text preview of its value made when the task was written, so searching never loads
or unpickles a value. Plain words are matched as given (`keyword-17` finds the phrase
"keyword 17"; `resnet50_v2` is found by `resnet50` or `v2` too); FTS5 syntax — "phrases",
prefix*, AND/OR/NOT, NEAR, column:filters — passes through when the query uses it.
Ranking is bm25 over the matches, or, for a query matching more than RANK_WINDOW (2,000)
artifacts, over the most recent 2,000 of them: FTS5 ranks every match it is given, so this
keeps a search for a common word as fast on 100k runs as on 1k.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .exceptions import LedgerflowError
from .query import connect_readonly

# A query using any of these is FTS5 syntax and passes through unchanged.
_FTS_SYNTAX = re.compile(r'["*^():{}+]|\b(AND|OR|NOT|NEAR)\b')
# At most this many matches are ranked: the most recent ones.
RANK_WINDOW = 2000
# bm25 weights for (name, flow, step, preview): a hit in the name counts most.
_WEIGHTS = (4.0, 1.0, 1.0, 1.0)


class SearchError(LedgerflowError, ValueError):
    """The search query is not valid FTS5 syntax."""


@dataclass(frozen=True)
class SearchHit:
    """One artifact matching a search, best first."""

    pathspec: str
    flow: str
    run_id: str
    step: str
    task_id: str
    name: str
    snippet: str
    rank: float
    created_at: str
    ledger_path: str

    @property
    def artifact(self) -> Any:
        """The matching DataArtifact (loading its value is up to you: `.data`)."""
        from .client import DataArtifact

        return DataArtifact(self.pathspec, ledger=self.ledger_path)


def fts_query(text: str) -> str:
    """The FTS5 query for what a user typed: syntax passes through, plain words are quoted."""
    text = text.strip()
    if not text:
        raise SearchError("empty search query; give a word to look for, e.g. search('accuracy')")
    if _FTS_SYNTAX.search(text):
        return text
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())


def _since_iso(since: str | datetime | None) -> str | None:
    if since is None:
        return None
    if isinstance(since, datetime):
        aware = since if since.tzinfo else since.astimezone()
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        parsed = datetime.fromisoformat(str(since).replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(
            f"since={since!r} is not a date; use ISO form like '2026-11-01' or a datetime"
        ) from None
    return _since_iso(parsed)


def search(
    query: str,
    flow: str | None = None,
    step: str | None = None,
    name: str | None = None,
    since: str | datetime | None = None,
    limit: int = 20,
    *,
    ledger: Any = None,
) -> list[SearchHit]:
    """Artifacts whose name, flow, step or value text match `query`, ranked by bm25."""
    if limit < 1:
        raise SearchError(f"limit must be at least 1, not {limit}")
    match = fts_query(query)
    # Narrow inside the index first (column filters), rank there, and make snippets only
    # for the best rows: snippet() re-reads each document, so it must not run on every match.
    narrowing = [f'{column} : "{value.replace(chr(34), chr(34) * 2)}"'
                 for column, value in (("flow", flow), ("step", step), ("name", name)) if value]
    if narrowing:
        match = " AND ".join([f"({match})", *narrowing])
    exact, params = [], []
    for column, value in (("f.name", flow), ("t.step", step), ("a.name", name)):
        if value is not None:
            exact.append(f"{column} = ?")
            params.append(value)
    since_iso = _since_iso(since)
    if since_iso is not None:
        exact.append("t.finished_at >= ?")
        params.append(since_iso)
    # Filters checked exactly outside the index may drop some of the best rows: fetch more.
    inner_limit = limit * 5 if exact else limit
    weights = ", ".join(str(w) for w in _WEIGHTS)
    sql = (
        "select f.name, r.run_id, t.step, t.task_id, a.name, hit.snip, hit.rank, t.finished_at "
        "from (select rowid as id, snippet(artifact_fts, 3, '[', ']', '…', 12) as snip, "
        f"bm25(artifact_fts, {weights}) as rank from artifact_fts "
        "where artifact_fts match ? and rowid >= ? order by rank limit ?) hit "
        "join artifact a on a.id = hit.id join task t on t.id = a.task_id "
        "join run r on r.id = t.run_id join flow f on f.id = r.flow_id "
        + (f"where {' and '.join(exact)} " if exact else "")
        + "order by hit.rank limit ?"
    )
    params = [match, inner_limit, *params]
    window = (
        "select rowid from artifact_fts where artifact_fts match ? "
        "order by rowid desc limit 1 offset ?"
    )
    conn = connect_readonly(ledger)
    try:
        # bm25 has no top-k shortcut: a query matching more than RANK_WINDOW artifacts is
        # ranked among the most recent RANK_WINDOW of them (ids grow with time).
        oldest = conn.execute(window, (match, RANK_WINDOW - 1)).fetchone()
        params.insert(1, oldest[0] if oldest else 0)
        rows = conn.execute(sql, (*params, limit)).fetchall()
        path = conn.execute("pragma database_list").fetchone()[2]
    except sqlite3.OperationalError as e:
        if "locked" not in str(e) and "no such table" not in str(e):  # the query's fault
            raise SearchError(
                f"invalid search query {query!r} ({e}); put literal text in double quotes, "
                'e.g. search(\'"keyword-17"\')'
            ) from None
        raise LedgerflowError(f"search failed: {e}") from None
    finally:
        conn.close()
    return [
        SearchHit(
            pathspec=f"{r[0]}/{r[1]}/{r[2]}/{r[3]}/{r[4]}",
            flow=r[0], run_id=r[1], step=r[2], task_id=r[3], name=r[4],
            snippet=r[5], rank=r[6], created_at=r[7], ledger_path=path,
        )  # fmt: skip
        for r in rows
    ]
