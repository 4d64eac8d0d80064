"""The search, diff and SQL pages of `ledgerflow ui`, over the library's own functions:
`ledgerflow.search` (FTS5), `ledgerflow/diff.py`'s run diff, and a read-only SQL connection."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from . import queries as q
from .layout import badge, esc, frame, link, path, table

SQL_SECONDS = 5.0  # a query running longer is interrupted
SQL_ROWS = 1000


def search_page(app: Any, text: str, flow: str | None) -> str:
    from ..exceptions import LedgerflowError
    from ..fulltext import search

    body = [
        f"<h1>Search</h1><p>Artifacts whose name or value matches "
        f"<b>{esc(text)}</b>" + (f" in {esc(flow)}" if flow else "") + "</p>"
    ]
    if text.strip():
        try:
            hits = search(text, flow=flow or None, limit=100, ledger=app.path)
        except LedgerflowError as e:
            return frame(
                "Search", "".join(body) + f'<div class="err">{esc(e)}</div>', app.path.name, text
            )
        rows = [[link(h.pathspec, path("artifact", h.flow, h.run_id, h.step, h.task_id, h.name)),
                 esc(h.snippet), esc((h.created_at or "")[:19].replace("T", " "))]
                for h in hits]  # fmt: skip
        body.append(
            table(["artifact", "match", "created"], rows, "hits")
            if rows
            else '<p class="muted">No matches.</p>'
        )
    return frame(f"Search {text}", "".join(body), app.path.name, text)


def diff_page(app: Any, a: str, b: str) -> str:
    from ..exceptions import LedgerflowError

    form = (
        '<form method="get" action="/diff">Run A <input name="a" size="40" '
        f'value="{esc(a)}" placeholder="Flow/RunId"> Run B <input name="b" size="40" '
        f'value="{esc(b)}" placeholder="Flow/RunId"> <button>Compare</button></form>'
    )
    body = ["<h1>Compare two runs</h1>", form]
    if a and b:
        try:
            body.append(_diff(app, a, b))
        except LedgerflowError as e:
            body.append(f'<div class="err">{esc(e)}</div>')
    return frame("Diff", "".join(body), app.path.name)


def _split_run(app: Any, text: str) -> tuple[str, str]:
    from ..exceptions import LedgerflowError

    flow, _, run_id = text.strip().partition("/")
    if not run_id or "/" in run_id or q.run(app.ledger, flow, run_id) is None:
        raise LedgerflowError(f"no run {text!r} in {app.path.name}; give runs as Flow/RunId")
    return flow, run_id


def _diff(app: Any, a: str, b: str) -> str:
    from ..diff import diff_runs

    result = diff_runs(app.ledger, _split_run(app, a), _split_run(app, b))
    if result["identical"]:
        return "<p>The two runs produced the same artifacts.</p>"
    out = []
    for step in result["steps"]:
        if not step["tasks"]:
            continue
        out.append(f"<h2>{esc(step['step'])}</h2>")
        rows = []
        for task in step["tasks"]:
            left = _values(app, task["a"])
            right = _values(app, task["b"])
            for kind in ("changed", "added", "removed"):
                for name in task[kind]:
                    rows.append(
                        [
                            esc(kind),
                            esc(name) + _index(task["index"]),
                            _cell(left.get(name)),
                            _cell(right.get(name)),
                        ]
                    )
        out.append(table(["", "artifact", esc(result["a"]), esc(result["b"])], rows, "diff"))
    return "".join(out)


def _index(index: list[int]) -> str:
    return esc("".join(f"[{i}]" for i in index))


def _values(app: Any, task_pathspec: str | None) -> dict[str, dict[str, Any]]:
    """A task's artifacts by name: the plain `value` column, else the preview."""
    if not task_pathspec:
        return {}
    flow, run_id, step, task_id = task_pathspec.split("/")
    run = q.run(app.ledger, flow, run_id)
    attempts = q.task_attempts(app.ledger, run["pk"], step, task_id) if run else []
    return {r["name"]: r for r in q.artifacts(app.ledger, attempts[-1]["pk"])} if attempts else {}


def _cell(art: dict[str, Any] | None) -> str:
    if art is None:
        return '<span class="muted">—</span>'
    shown = art["value"] if art["value"] is not None else art["preview"][:300]
    return f"<pre>{esc(shown)}</pre>"


def sql_page(app: Any, query: str) -> str:
    example = "select flow, run_id, status, created_at from runs order by created_at desc limit 20"
    body = [
        '<h1>SQL</h1><p class="muted">One read-only statement over the views '
        "<code>runs</code>, <code>tasks</code>, <code>artifacts</code>, "
        f"<code>all_artifacts</code> (at most {SQL_ROWS} rows, {SQL_SECONDS:g} s).</p>",
        '<form method="get" action="/sql"><textarea name="q" rows="5">'
        f"{esc(query or example)}</textarea><br><button>Run</button></form>",
    ]
    if query.strip():
        try:
            columns, rows, more = run_sql(app.path, query)
        except Exception as e:  # noqa: BLE001 - SQLError and friends: shown, never a 500
            body.append(f'<div class="err">{esc(e)}</div>')
        else:
            body.append(table(columns, [[esc(v) for v in r] for r in rows], "sql-result"))
            body.append(
                f'<p class="muted">{len(rows)} row(s)'
                + (f", the first {SQL_ROWS} shown" if more else "")
                + "</p>"
            )
    return frame("SQL", "".join(body), app.path.name)


def run_sql(ledger_path: Any, query: str) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """Columns, up to SQL_ROWS rows, and whether there were more; interrupted after
    SQL_SECONDS. The connection is `ledgerflow.sql`'s (mode=ro, query_only, no ATTACH)."""
    from ..query import SQLError, connect_readonly

    conn = connect_readonly(ledger_path)
    deadline = time.monotonic() + SQL_SECONDS
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        cur = conn.execute(query)
        rows = cur.fetchmany(SQL_ROWS + 1)
        columns = [d[0] for d in cur.description or []]
    except sqlite3.OperationalError as e:
        if "interrupted" in str(e):
            raise SQLError(
                f"the query ran longer than {SQL_SECONDS:g} s and was stopped; "
                "add a where clause or a limit"
            ) from None
        raise SQLError(f"SQL error: {e}") from None
    except (sqlite3.Warning, sqlite3.ProgrammingError) as e:
        raise SQLError(f"{e}; run a single select statement") from None
    except sqlite3.DatabaseError as e:
        text = str(e)
        if "not authorized" in text or "readonly" in text or "query_only" in text:
            raise SQLError("the SQL page is read-only: run select statements only") from None
        raise SQLError(f"SQL error: {text}") from None
    finally:
        conn.close()
    return columns, rows[:SQL_ROWS], len(rows) > SQL_ROWS


__all__ = ["badge", "diff_page", "run_sql", "search_page", "sql_page"]
