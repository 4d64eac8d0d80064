"""The search, diff and SQL pages of `ledgerflow ui`, over the library's own functions:
`ledgerflow.search` (FTS5), `ledgerflow/diff.py`'s run diff, and a read-only SQL connection."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Any

from ..views import queries as q
from ..views.layout import badge, esc, frame, link, path, table

SQL_SECONDS = 5.0  # a query running longer is interrupted
SQL_ROWS = 1000


SEARCH_PAGE = 50
SEARCH_MAX = 1000  # hits counted at most; past it the page says "more than"
KIND_LABELS = {"": "everything", "artifact": "artifacts", "log": "logs", "exception": "errors"}


def search_page(app: Any, text: str, flow: str | None, kind: str | None = None,
                name: str | None = None, page: int = 1) -> str:  # fmt: skip
    """The CLI's search (`ledgerflow search`: artifacts, logs and exceptions, by flow, kind
    and artifact name) with every hit linked to the page that shows it, highlighted
    matches, a count and pages of SEARCH_PAGE."""
    from ..exceptions import LedgerflowError
    from ..fulltext import search

    kind = kind if kind in KIND_LABELS and kind else None
    flows = "".join(f'<option{" selected" if f == flow else ""}>{esc(f)}</option>'
                    for f in q.flows(app.ledger))  # fmt: skip
    kinds = "".join(f'<option value="{k}"{" selected" if k == (kind or "") else ""}>{v}</option>'
                    for k, v in KIND_LABELS.items())  # fmt: skip
    form = ('<form class="filters" method="get" action="/search">'
            f'<input type="search" name="q" value="{esc(text)}" size="40" placeholder="words"> '
            f'<select name="kind">{kinds}</select> '
            f'<select name="flow"><option value="">all flows</option>{flows}</select> '
            f'<input name="name" value="{esc(name or "")}" placeholder="artifact name"> '
            "<button>Search</button></form>")  # fmt: skip
    body = ["<h1>Search</h1>", form]
    if not text.strip():
        return frame("Search", "".join(body), app.path.name, text)
    page = max(page, 1)
    want = min(page * SEARCH_PAGE + 1, SEARCH_MAX + 1)
    try:
        hits = search(text, flow=flow or None, name=name or None, kind=kind, limit=want,
                      ledger=app.path)  # fmt: skip
    except LedgerflowError as e:
        body.append(f'<div class="err">{esc(e)}</div>')
        return frame("Search", "".join(body), app.path.name, text)
    first = (page - 1) * SEARCH_PAGE
    shown = hits[first : first + SEARCH_PAGE]
    more = len(hits) > first + SEARCH_PAGE
    if len(hits) > SEARCH_MAX:
        count = f"more than {SEARCH_MAX:,} matches (narrow the search with a filter)"
    elif more:
        count = f"more than {first + len(shown):,} matches"
    else:
        count = f"{len(hits):,} match{'es' if len(hits) != 1 else ''}"
    where = f" in {esc(flow)}" if flow else ""
    rng = f"{first + 1:,}–{first + len(shown):,} of " if shown else ""
    body.append(f'<p class="count">{rng}{count} for <b>{esc(text)}</b>{where}</p>')
    rows = [[esc(h.kind), link(_hit_label(h), _hit_url(h, text)), _highlight(h.snippet),
             esc(_when(h.created_at))] for h in shown]  # fmt: skip
    if rows:
        body.append(table(["kind", "where", "match", "created"], rows, "hits"))
    elif page == 1:
        body.append('<p class="muted">No matches.</p>')
    nav = []
    here = {"q": text, "flow": flow, "kind": kind, "name": name}
    if page > 1:
        nav.append(link("← previous", path("search", **here, page=page - 1)))
    if more and first + SEARCH_PAGE < SEARCH_MAX:
        nav.append(link("next →", path("search", **here, page=page + 1)))
    if nav:
        body.append(f'<div class="pager">{" · ".join(nav)}</div>')
    return frame(f"Search {text}", "".join(body), app.path.name, text)


def _hit_label(hit: Any) -> str:
    return hit.pathspec if hit.kind == "artifact" else f"{hit.pathspec} ({hit.name})"


def _hit_url(hit: Any, text: str) -> str:
    """The page that shows the hit: the artifact's page, or the task's page opened at the
    log window holding the first match (find=) or at its exception."""
    if hit.kind == "artifact":
        return path("artifact", hit.flow, hit.run_id, hit.step, hit.task_id, hit.name)
    task = path("task", hit.flow, hit.run_id, hit.step, hit.task_id)
    if hit.kind == "exception":
        return task + "#exception"
    return path("task", hit.flow, hit.run_id, hit.step, hit.task_id, find=text,
                stream=hit.name) + f"#{hit.name}"  # fmt: skip


_MARK = re.compile(r"\[([^\[\]]{1,200})\]")


def _highlight(snippet: str) -> str:
    """The snippet escaped, its [matched] words as <mark>."""
    return _MARK.sub(r"<mark>\1</mark>", esc(snippet))


def _when(iso: Any) -> str:
    from ..clock import screen_time

    try:
        return screen_time(iso)
    except (TypeError, ValueError, OverflowError):
        return str(iso or "")


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


DIFF_ROWS = 50  # task rows each step section lists; the rest are counted


def _diff(app: Any, a: str, b: str) -> str:
    """What `ledgerflow diff` says, laid out: the runs side by side (status, times,
    parameters), a row per step (tasks and durations on each side, what changed), then per
    step the artifacts that changed (values when both are plain JSON) and the tasks only on
    one side."""
    from ..diff import diff_runs
    from .pages import _duration, _params, _run_duration, _time

    side_a, side_b = _split_run(app, a), _split_run(app, b)
    result = diff_runs(app.ledger, side_a, side_b)
    ra, rb = q.run(app.ledger, *side_a), q.run(app.ledger, *side_b)
    assert ra is not None and rb is not None
    sa, sb = q.step_summaries(app.ledger, ra["pk"]), q.step_summaries(app.ledger, rb["pk"])
    head = [
        esc(""),
        link(result["a"], path("run", *side_a)),
        link(result["b"], path("run", *side_b)),
    ]
    overview = [
        ["status", badge(ra["shown_status"]), badge(rb["shown_status"])],
        ["started", _time(ra["created_at"]), _time(rb["created_at"])],
        ["duration", esc(_run_duration(ra)), esc(_run_duration(rb))],
        ["tasks", esc(sum(v["n"] for v in sa.values())), esc(sum(v["n"] for v in sb.values()))],
    ]
    out = [f'<table class="kv diff-runs"><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>'
           + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in overview)
           + "</table>"]  # fmt: skip
    out.append(_param_diff(ra["params"], rb["params"], _params))
    if result["identical"]:
        out.append('<p class="same">No differences: the two runs produced the same artifacts.</p>')
    step_rows = []
    for st in result["steps"]:
        name, n_a, n_b = st["step"], st["tasks_a"], st["tasks_b"]
        va, vb = sa.get(name, {}), sb.get(name, {})
        if not n_a or not n_b:
            what = f"only in {'B' if not n_a else 'A'}"
        else:
            what = _changes(st) or "no differences"
            if n_a != n_b:
                what = f"{n_a:,} tasks in A, {n_b:,} in B; " + what
        step_rows.append([link(name, f"#step-{name}") if st["tasks"] else esc(name),
                          f'<span class="num">{n_a:,}</span>', f'<span class="num">{n_b:,}</span>',
                          esc(_duration(va.get("first"), va.get("last"))),
                          esc(_duration(vb.get("first"), vb.get("last"))), esc(what)])  # fmt: skip
    out.append("<h2>Steps</h2>" + table(["step", "tasks A", "tasks B", "took A", "took B",
                                         "differences"], step_rows, "diff-steps"))  # fmt: skip
    for st in result["steps"]:
        if st["tasks"]:
            out.append(_step_diff(st))
    return "".join(out)


def _param_diff(pa: Any, pb: Any, fallback: Any) -> str:
    if not (isinstance(pa, dict) and isinstance(pb, dict)):
        return "<h2>Parameters</h2>" + fallback(pa) + fallback(pb)
    rows = []
    for k in sorted(set(pa) | set(pb)):
        va = json.dumps(pa[k]) if k in pa else "—"
        vb = json.dumps(pb[k]) if k in pb else "—"
        cls = ' class="changed"' if va != vb else ""
        rows.append(
            f"<tr{cls}><td>{esc(k)}</td><td><code>{esc(va)}</code></td>"
            f"<td><code>{esc(vb)}</code></td><td>{'changed' if va != vb else ''}</td></tr>"
        )
    return ('<h2>Parameters</h2><table class="params"><tr><th>parameter</th><th>A</th><th>B</th>'
            f"<th></th></tr>{''.join(rows)}</table>") if rows else ""  # fmt: skip


def _changes(d: dict[str, Any]) -> str:
    return "; ".join(f"{kind} {', '.join(d[kind])}"
                     for kind in ("changed", "added", "removed") if d[kind])  # fmt: skip


def _side(side: dict[str, Any]) -> str:
    if "json" in side:
        return f"<pre>{esc(side['json'])}</pre>"
    return (f'<span class="muted">{esc(side["encoding"])}, {esc(side["size"])} bytes, '
            f"sha {esc(str(side['sha'])[:12])}</span>")  # fmt: skip


def _step_diff(st: dict[str, Any]) -> str:
    name = st["step"]
    only_a = [t for t in st["tasks"] if t["b"] is None]
    only_b = [t for t in st["tasks"] if t["a"] is None]
    both = [t for t in st["tasks"] if t["a"] and t["b"]]
    out = [f'<h2 id="step-{esc(name)}">{esc(name)}</h2>']
    if both:
        rows = []
        for t in both[:DIFF_ROWS]:
            where = (f"{_index(t['index'])} task {_tid(t['a'])} vs {_tid(t['b'])}"
                     if t["index"] or st["tasks_a"] > 1 else "")  # fmt: skip
            for kind in ("changed", "added", "removed"):
                for art in t[kind]:
                    sides = t.get("values", {}).get(art)
                    rows.append([esc(where), esc(kind), esc(art),
                                 _side(sides["a"]) if sides else "", _side(sides["b"]) if sides
                                 else ""])  # fmt: skip
        out.append(table(["task", "", "artifact", "A", "B"], rows, "diff"))
        if len(both) > DIFF_ROWS:
            out.append(f'<p class="muted">{len(both) - DIFF_ROWS:,} more tasks differ; '
                       "`ledgerflow diff --json` lists them all.</p>")  # fmt: skip
    for label, tasks, key in (("only in A", only_a, "a"), ("only in B", only_b, "b")):
        if not tasks:
            continue
        links = ", ".join(link(_index(t["index"]) or _tid(t[key]),
                               path("task", *str(t[key]).split("/")))
                          for t in tasks[:DIFF_ROWS])  # fmt: skip
        more = f" and {len(tasks) - DIFF_ROWS:,} more" if len(tasks) > DIFF_ROWS else ""
        out.append(f'<p class="only"><b>{len(tasks):,} task{"s" if len(tasks) != 1 else ""} '
                   f"{label}</b>: {links}{more}</p>")  # fmt: skip
    return "".join(out)


def _tid(pathspec: str | None) -> str:
    return str(pathspec or "").rsplit("/", 1)[-1]


def _index(index: list[int]) -> str:
    return "".join(f"[{i}]" for i in index)


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
