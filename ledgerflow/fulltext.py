"""Full-text search over artifacts, task logs and exceptions:
`ledgerflow.search("resnet50", flow="Train")`, `search("bad item", kind="log")`.

Two FTS5 indexes, both filled by the writer in the transaction that writes a task:
`artifact_fts` holds each produced artifact's name, flow, step and a bounded text preview of
its value, so searching never loads or unpickles a value; `task_fts` holds each task
attempt's stdout, stderr and exception ("builtins.ValueError: bad item"), one row each,
its rowid `task id * 4 + kind` (see TEXT_KINDS) so a task's rows are found without a scan.
How the indexes are created, filled, rebuilt and dropped is search_index.py's; this module
only reads them. Plain words are matched as given (`keyword-17` finds the phrase
"keyword 17"; `resnet50_v2` is found by `resnet50` or `v2` too); FTS5 syntax — "phrases",
prefix*, AND/OR/NOT, NEAR, column:filters — passes through when the query uses it.
Prefix queries of 2 to 8 characters read a prefix index (search_index.PREFIX_LENGTHS), so they cost
what a plain word costs. Ranking is bm25 over the matches, or, for a query matching more
than RANK_WINDOW (2,000) artifacts, over the most recent 2,000 of them: FTS5 ranks every
match it is given, so this
keeps a search for a common word as fast on 100k runs as on 1k.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

from . import logstore
from .clock import stored_iso
from .exceptions import LedgerflowError, SearchError
from .query import DEFAULT_TIMEOUT, connect_readonly, time_limit
from .search_index import TEXT_KINDS
from .structs import struct

# A query using any of these is FTS5 syntax and passes through unchanged.
_FTS_SYNTAX = re.compile(r'["*^():{}+]|\b(AND|OR|NOT|NEAR)\b')
# At most this many matches are ranked: the most recent ones.
RANK_WINDOW = 2000
# bm25 weights for (name, flow, step, preview): a hit in the name counts most.
_WEIGHTS = (4.0, 1.0, 1.0, 1.0)
# What a search can look in (`kind=`), and the codes of task_fts rows (rowid % 4).
KINDS = ("artifact", "log", "exception")
_TEXT_NAMES = {code: name for name, code in TEXT_KINDS.items()}


@struct(frozen=True)
class SearchHit:
    """One artifact, task log or task exception matching a search, best first. For a log
    or an exception, `pathspec` is the task's and `name` is 'stdout', 'stderr' or
    'exception'."""

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
    kind: str = "artifact"  # artifact | log | exception

    @property
    def artifact(self) -> Any:
        """The matching DataArtifact (loading its value is up to you: `.data`); None for a
        log or exception hit."""
        from .client import DataArtifact

        if self.kind != "artifact":
            return None
        return DataArtifact(self.pathspec, ledger=self.ledger_path)

    @property
    def task(self) -> Any:
        """The Task holding the match."""
        from .client import Task

        return Task("/".join(self.pathspec.split("/")[:4]), ledger=self.ledger_path)


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
    try:
        return stored_iso(since)
    except ValueError:
        raise SearchError(
            f"since={since!r} is not a date; use ISO form like '2026-11-01' or a datetime"
        ) from None


def search(
    query: str,
    flow: str | None = None,
    step: str | None = None,
    name: str | None = None,
    since: str | datetime | None = None,
    limit: int = 20,
    *,
    kind: str | None = None,
    ledger: Any = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> list[SearchHit]:
    """Artifacts (name, flow, step, value text), task logs and exceptions matching `query`,
    ranked by bm25. `kind` keeps one of 'artifact', 'log', 'exception'; `name` (an
    artifact's name) searches artifacts only. `ledger`: a path or a `Ledger`; by default the
    one `use_ledger()` chose. A search running longer than `timeout` seconds (None: no
    limit) is stopped (QueryTimeout), as `sql()` is; Ctrl-C stops it at once."""
    if limit < 1:
        raise SearchError(f"limit must be at least 1, not {limit}")
    if kind is not None and kind not in KINDS:
        raise SearchError(f"kind={kind!r} is not one of {', '.join(KINDS)}")
    match = fts_query(query)
    since_iso = _since_iso(since)
    conn = connect_readonly(ledger)
    try:
        with time_limit(conn, timeout):
            hits = _search(conn, match, flow, step, name, since_iso, limit, kind)
    except sqlite3.OperationalError as e:
        if "locked" not in str(e) and "no such table" not in str(e):  # the query's fault
            raise SearchError(
                f"invalid search query {query!r} ({e}); put literal text in double quotes, "
                "e.g. search('\"keyword-17\"')"
            ) from None
        raise LedgerflowError(f"search failed: {e}") from None
    finally:
        conn.close()
    hits.sort(key=lambda h: h.rank)
    return hits[:limit]


def _search(conn: sqlite3.Connection, match: str, flow: str | None, step: str | None,
            name: str | None, since_iso: str | None, limit: int,
            kind: str | None) -> list[SearchHit]:  # fmt: skip
    path = conn.execute("pragma database_list").fetchone()[2]
    hits: list[SearchHit] = []
    if kind in (None, "artifact"):
        hits += _artifact_hits(conn, match, flow, step, name, since_iso, limit, path)
    # A ledger not yet migrated (opened read-only since) has no task_fts: artifacts only.
    has_text = conn.execute("select 1 from sqlite_master where name = 'task_fts'").fetchone()
    # Since migration 8, logs are in log_fts (one row per stored piece) and task_fts holds
    # exceptions only; a file from before it (read, never migrated) has them all in task_fts.
    has_pieces = conn.execute("select 1 from sqlite_master where name = 'log_fts'").fetchone()
    if kind == "artifact" or name is not None:
        return hits
    if has_pieces and kind in (None, "log"):
        hits += _log_hits(conn, match, flow, step, since_iso, limit, path)
    if has_text:
        kinds = {"log": (0, 1), "exception": (2,)}.get(kind or "", (0, 1, 2))
        if has_pieces:
            kinds = tuple(k for k in kinds if k == TEXT_KINDS["exception"])
        if kinds:
            hits += _task_hits(conn, match, flow, step, since_iso, limit, path, kinds)
    return hits


def _oldest_ranked(conn: sqlite3.Connection, table: str, match: str) -> int:
    """bm25 has no top-k shortcut: a query matching more than RANK_WINDOW rows is ranked
    among the most recent RANK_WINDOW of them (ids grow with time)."""
    oldest = conn.execute(
        f"select rowid from {table} where {table} match ? order by rowid desc limit 1 offset ?",
        (match, RANK_WINDOW - 1),
    ).fetchone()
    return int(oldest[0]) if oldest else -(2**62)


def _artifact_hits(conn: sqlite3.Connection, match: str, flow: str | None, step: str | None,
                   name: str | None, since_iso: str | None, limit: int,
                   path: str) -> list[SearchHit]:  # fmt: skip
    # Narrow inside the index first (column filters), rank there, and make snippets only
    # for the rows returned (_snippets): snippet() re-reads each document, and inside the
    # ranking query it ran for every ranked match (half the time of a search at 100k runs).
    narrowing = [
        f'{column} : "{value.replace(chr(34), chr(34) * 2)}"'
        for column, value in (("flow", flow), ("step", step), ("name", name))
        if value
    ]
    narrowed = " AND ".join([f"({match})", *narrowing]) if narrowing else match
    exact, params = _exact_filters(flow, step, since_iso)
    if name is not None:
        exact.append("a.name = ?")
        params.append(name)
    # Filters checked exactly outside the index may drop some of the best rows: fetch more.
    inner_limit = limit * 5 if exact else limit
    weights = ", ".join(str(w) for w in _WEIGHTS)
    # bm25() first counts the rows holding each phrase of the query, reading its whole
    # doclist: a filter phrase such as `flow : "Train"` (a quarter of all rows) cost more
    # than the search itself. So the narrowed query only picks the candidates (iterating,
    # no ranking), and bm25 ranks them by the user's words alone: the same order (the
    # filter phrase adds nearly the same to every candidate), 2.5-6x faster at 100k runs.
    # `+rowid` keeps SQLite from looking the candidates up one by one in the index.
    candidates = ("and +rowid in (select rowid from artifact_fts where artifact_fts match ? "
                  "and rowid >= ?) ") if narrowing else ""  # fmt: skip
    sql = (
        "select f.name, r.run_id, t.step, t.task_id, a.name, hit.id, hit.rank, t.finished_at "
        "from (select rowid as id, "
        f"bm25(artifact_fts, {weights}) as rank from artifact_fts "
        f"where artifact_fts match ? and rowid >= ? {candidates}order by rank limit ?) hit "
        "join artifact a on a.id = hit.id join task t on t.id = a.task_id "
        "join run r on r.id = t.run_id join flow f on f.id = r.flow_id "
        + (f"where {' and '.join(exact)} " if exact else "")
        + "order by hit.rank limit ?"
    )
    oldest = _oldest_ranked(conn, "artifact_fts", narrowed)
    if narrowing:
        if oldest < 0:  # fewer candidates than the window: start at the first of them
            first = conn.execute("select rowid from artifact_fts where artifact_fts match ? "
                                 "order by rowid limit 1", (narrowed,)).fetchone()  # fmt: skip
            if first is None:
                return []
            oldest = int(first[0])
        ranked: tuple[str | int, ...] = (match, oldest, narrowed, oldest)
    else:
        ranked = (match, oldest)
    rows = conn.execute(sql, (*ranked, inner_limit, *params, limit)).fetchall()
    snips = _snippets(conn, "artifact_fts", _ARTIFACT_COLUMNS, 3, narrowed, [r[5] for r in rows])
    return [
        SearchHit(
            pathspec=f"{r[0]}/{r[1]}/{r[2]}/{r[3]}/{r[4]}",
            flow=r[0],
            run_id=r[1],
            step=r[2],
            task_id=r[3],
            name=r[4],
            snippet=snips.get(r[5], ""),
            rank=r[6],
            created_at=r[7],
            ledger_path=path,
        )
        for r in rows
    ]


def _task_hits(conn: sqlite3.Connection, match: str, flow: str | None, step: str | None,
               since_iso: str | None, limit: int, path: str,
               kinds: tuple[int, ...]) -> list[SearchHit]:  # fmt: skip
    exact, params = _exact_filters(flow, step, since_iso)
    if len(kinds) < len(TEXT_KINDS):
        exact.append(f"hit.id % 4 in ({', '.join(str(k) for k in kinds)})")
    # flow, step and kind are checked outside the index: fetch more than asked.
    inner_limit = limit * 5 if exact else limit
    sql = (
        "select f.name, r.run_id, t.step, t.task_id, hit.id % 4, hit.id, hit.rank, "
        "t.finished_at from (select rowid as id, "
        "bm25(task_fts) as rank from task_fts where task_fts match ? and rowid >= ? "
        "order by rank limit ?) hit join task t on t.id = hit.id / 4 "
        "join run r on r.id = t.run_id join flow f on f.id = r.flow_id "
        + (f"where {' and '.join(exact)} " if exact else "")
        + "order by hit.rank limit ?"
    )
    oldest = _oldest_ranked(conn, "task_fts", match)
    rows = conn.execute(sql, (match, oldest, inner_limit, *params, limit)).fetchall()
    snips = _snippets(conn, "task_fts", ("text",), 0, match, [r[5] for r in rows])
    return [_task_hit(r, _TEXT_NAMES[r[4]], snips, path,
                      "exception" if r[4] == TEXT_KINDS["exception"] else "log")
            for r in rows]  # fmt: skip


def _log_hits(conn: sqlite3.Connection, match: str, flow: str | None, step: str | None,
              since_iso: str | None, limit: int, path: str) -> list[SearchHit]:  # fmt: skip
    """Log hits from log_fts (a row per stored piece of a log): the best piece of each task
    attempt's stream, its snippet cut from that piece."""
    exact, params = _exact_filters(flow, step, since_iso)
    # Several pieces of one log may match: rank more, keep each stream's best.
    inner_limit = limit * 20
    sql = (
        "select f.name, r.run_id, t.step, t.task_id, p.stream, hit.id, min(hit.rank), "
        "t.finished_at from (select rowid as id, bm25(log_fts) as rank from log_fts "
        "where log_fts match ? and rowid >= ? order by rank limit ?) hit "
        "join log_piece p on p.id = hit.id join task t on t.id = p.task_id "
        "join run r on r.id = t.run_id join flow f on f.id = r.flow_id "
        + (f"where {' and '.join(exact)} " if exact else "")
        + "group by p.task_id, p.stream order by 7 limit ?"
    )
    oldest = _oldest_ranked(conn, "log_fts", match)
    rows = conn.execute(sql, (match, oldest, inner_limit, *params, limit)).fetchall()
    if not rows:
        return []
    texts: dict[int, tuple[str, ...]] = {}
    for pk, codec, data, size in conn.execute(
        f"select id, codec, data, bytes from log_piece where id in ({', '.join('?' * len(rows))})",
        [r[5] for r in rows],
    ).fetchall():
        try:
            texts[pk] = (logstore.index_text(logstore.decode_piece(codec, data, size)),)
        except logstore.DamagedLog:
            texts[pk] = ("(damaged log piece: run `ledgerflow doctor`)",)
    snips = _bounded_snippets(("text",), 0, match, texts)
    return [_task_hit(r, r[4], snips, path, "log") for r in rows]


def _task_hit(r: tuple[Any, ...], name: str, snips: dict[int, str], path: str,
              kind: str) -> SearchHit:  # fmt: skip
    """A hit in a task's text: row (flow, run_id, step, task_id, _, hit id, rank,
    finished_at), its snippet by hit id."""
    return SearchHit(
        pathspec=f"{r[0]}/{r[1]}/{r[2]}/{r[3]}", flow=r[0], run_id=r[1], step=r[2],
        task_id=r[3], name=name, snippet=snips.get(r[5], "").replace("\n", " ").strip(),
        rank=r[6], created_at=r[7], ledger_path=path, kind=kind,
    )  # fmt: skip


# A snippet is cut from at most this many characters of a hit's text, around the first
# place a word of the query appears: FTS5's snippet() over one 16 MB log took 561 s, and
# SQLite's progress handler cannot stop it (one function call). Its cost grows with the
# square of the matches in the text: 32 KB that are all matches took 10 s, 2 KB take ~20 ms.
SNIPPET_SOURCE = 2048
_ARTIFACT_COLUMNS = ("name", "flow", "step", "preview")
_OPERATORS = {"AND", "OR", "NOT", "NEAR"}


def _first_word(match: str) -> str:
    """A word of the query to look for in a long text (where its snippet is cut)."""
    words = [w for w in re.findall(r"\w+", match) if w not in _OPERATORS]
    return words[0].lower() if words else ""


def _snippets(conn: sqlite3.Connection, table: str, columns: tuple[str, ...], column: int,
              match: str, ids: list[int]) -> dict[int, str]:  # fmt: skip
    """Snippets of the rows a search returns, by rowid, each cut from at most
    SNIPPET_SOURCE characters of each column: read from the table's content (a rowid
    lookup each), the snippet column around the first place the query's first word is."""
    if not ids:
        return {}
    word = _first_word(match)
    half = SNIPPET_SOURCE // 2
    cols = [f"substr(c{i}, 1, {SNIPPET_SOURCE})" for i in range(len(columns))]
    cols[column] = (f"substr(c{column}, max(1, instr(lower(c{column}), ?) - {half}), "
                    f"{SNIPPET_SOURCE})")  # fmt: skip
    marks = ", ".join("?" * len(ids))
    texts = {row[0]: tuple(row[1:]) for row in conn.execute(
        f"select id, {', '.join(cols)} from {table}_content where id in ({marks})",
        (word, *ids))}  # fmt: skip
    return _bounded_snippets(columns, column, match, texts)


def _bounded_snippets(columns: tuple[str, ...], column: int, match: str,
                      texts: dict[int, tuple[str, ...]]) -> dict[int, str]:  # fmt: skip
    """FTS5 snippets made in a private in-memory table from each hit's text (cut to
    SNIPPET_SOURCE characters around the first word of the query), so they read as the
    index's own would, at a bounded cost."""
    if not texts:
        return {}
    word = _first_word(match)
    cut = {}
    for pk, values in texts.items():
        values = tuple("" if v is None else str(v) for v in values)
        text = values[column]
        if len(text) > SNIPPET_SOURCE:
            at = text.lower().find(word) if word else -1
            begin = max(at - SNIPPET_SOURCE // 2, 0) if at >= 0 else 0
            text = text[begin : begin + SNIPPET_SOURCE]
        cut[pk] = (
            tuple(v[:SNIPPET_SOURCE] for v in values[:column])
            + (text,)
            + tuple(v[:SNIPPET_SOURCE] for v in values[column + 1 :])
        )
    mem = sqlite3.connect(":memory:")
    try:
        mem.execute(f"create virtual table s using fts5({', '.join(columns)}, "
                    "tokenize = 'unicode61')")  # fmt: skip
        mem.executemany(
            f"insert into s(rowid, {', '.join(columns)}) values (?{', ?' * len(columns)})",
            [(pk, *values) for pk, values in cut.items()],
        )
        found = dict(mem.execute(
            f"select rowid, snippet(s, {column}, '[', ']', '…', 12) from s where s match ?",
            (match,)).fetchall())  # fmt: skip
    except sqlite3.OperationalError:
        found = {}
    finally:
        mem.close()
    # A hit whose words lie outside the cut text shows the start of it.
    return {pk: found.get(pk) or _opening(values[column]) for pk, values in cut.items()}


def _opening(text: str) -> str:
    words = text.split()
    return " ".join(words[:12]) + ("…" if len(words) > 12 else "")


def _exact_filters(flow: str | None, step: str | None,
                   since_iso: str | None) -> tuple[list[str], list[Any]]:  # fmt: skip
    exact, params = [], []
    for column, value in (("f.name", flow), ("t.step", step)):
        if value is not None:
            exact.append(f"{column} = ?")
            params.append(value)
    if since_iso is not None:
        exact.append("t.finished_at >= ?")
        params.append(since_iso)
    return exact, params
