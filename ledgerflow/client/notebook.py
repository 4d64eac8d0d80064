"""What the Client API's objects look like in a notebook (`_repr_html_`), and a flow's runs
as a pandas DataFrame (`runs_dataframe`).

Owned by the UI. Everything drawn here comes from the ledger's rows and stored previews:
nothing is unpickled (a received ledger's pickles run no code by being looked at). Every
value is escaped; a malformed `graph_info` is reported, not raised. When `ledgerflow ui` is
serving the same ledger on this machine, names link to its pages (views/registry.py).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from .. import reads
from ..cards.dag import STATUS_COLOURS, step_status
from ..clock import format_duration, screen_time, seconds_between
from ..exceptions import LedgerflowError

_CELL = "style='text-align:left;padding:2px 8px;border-bottom:1px solid #eee;vertical-align:top'"
_HEAD = "style='text-align:left;padding:2px 8px;border-bottom:1px solid #ccc;background:#f5f5f5'"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _badge(status: Any) -> str:
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
    return (f"<span class='lf-status' style='background:{colour};color:#fff;border-radius:8px;"
            f"padding:0 7px;font-size:12px'>{_e(status or 'none')}</span>")  # fmt: skip


def _time(iso: Any) -> str:
    try:
        return _e(screen_time(iso))
    except (TypeError, ValueError, OverflowError):
        return _e(iso)


def _took(start: Any, end: Any) -> str:
    try:
        return format_duration(seconds_between(start, end))
    except (TypeError, ValueError):
        return ""


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """Cells are HTML already (escape with _e)."""
    head = "".join(f"<th {_HEAD}>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{c}</td>" for c in row) + "</tr>"
                   for row in rows)  # fmt: skip
    return f"<table class='{cls}' style='border-collapse:collapse'><tr>{head}</tr>{body}</table>"


def _kv(rows: list[tuple[str, str]], caption: str = "") -> str:
    """A two-column table of facts, its caption the object's title (HTML already)."""
    cap = f"<caption style='text-align:left;font-weight:600;padding:4px 0'>{caption}</caption>"
    return ("<table>" + (cap if caption else "") + "".join(
        f"<tr><th {_HEAD}>{_e(k)}</th><td {_CELL}>{v}</td></tr>" for k, v in rows) + "</table>")  # fmt: skip


def _graph_text(graph: dict[str, Any]) -> str:
    """'start → fan  (foreach self.items)' per step, in a collapsed block."""
    lines = []
    for name, info in graph["steps"].items():
        note = (f"  (foreach self.{info['foreach']})"
                if info["type"] == "split-foreach" and info["foreach"] else "")  # fmt: skip
        lines.append(f"{name} → {', '.join(info['next'])}{note}" if info["next"] else name)
    if not lines:
        return ""
    return ("<details><summary>graph as text</summary><pre>" + _e("\n".join(lines[:500]))
            + "</pre></details>")  # fmt: skip


def _link(text: str, ledger: Any, *parts: Any, **query: Any) -> str:
    """`text` linked to the UI page of `parts` when `ledgerflow ui` serves this ledger."""
    from ..views.layout import path
    from ..views.registry import url_for

    base = url_for(ledger.path)
    if base is None:
        return _e(text)
    where = path(*parts, **query) if parts != ("",) else "/" + path("", **query).lstrip("/")
    return f"<a href='{_e(base + where)}' target='_blank'>{_e(text)}</a>"


def _title(kind: str, text: str, status: Any = None) -> str:
    badge = f" {_badge(status)}" if status is not None else ""
    return f"{_e(kind)} <code>{text}</code>{badge}"


def _artifact_rows(ledger: Any, task_pk: int) -> list[list[str]]:
    rows = []
    for a in reads.task_artifacts(ledger, task_pk, public=True, blob=True):
        shown = a["value"] if a["value"] is not None else (a["preview"] or "")
        text = str(shown)
        rows.append([_e(a["name"]), _e(a["type"]), f"{_e(a['size'])}", _e(a["encoding"]),
                     f"<code>{_e(text[:200] + ('…' if len(text) > 200 else ''))}</code>"])  # fmt: skip
    return rows


# -- the objects -------------------------------------------------------------------------------


def run_html(run: Any) -> str:
    """Status, times and duration, parameters, the DAG with each step's task count and
    status, a row per step with its durations, and the end task's artifacts with previews."""
    from ..views import queries as q
    from ..views.graphview import clean_graph, dag_svg, step_order

    ledger, row = run._ledger, run._row
    status = run.status
    flow, run_id = run.pathspec.split("/")
    raw_text = reads.run_graph_info(ledger, run._pk)
    graph, problems = clean_graph(None)
    if raw_text:
        try:
            graph, problems = clean_graph(json.loads(raw_text))
        except (ValueError, RecursionError) as e:
            problems = [
                f"graph_info is not valid JSON ({type(e).__name__}); the graph is not drawn"
            ]
    steps = q.step_summaries(ledger, run._pk)
    order = step_order(graph, list(steps))
    statuses = {s: step_status(list(v["statuses"])) for s, v in steps.items()}
    counts = {s: v["n"] for s, v in steps.items()}
    if row["finished_at"]:
        took = _took(row["created_at"], row["finished_at"])
    elif status == "running":
        from ..clock import now_iso

        took = f"running for {_took(row['created_at'], now_iso())}"
    else:
        took = "never finished"
    params = row.get("params")
    try:
        params = json.loads(params) if isinstance(params, str) else {}
    except ValueError:
        params = {}
    facts = [("started", _time(row["created_at"])),
             ("finished", _time(row["finished_at"]) if row["finished_at"] else
              f"<i>not yet ({_e(status)})</i>"),
             ("duration", _e(took)), ("tasks", _e(f"{sum(counts.values()):,} in {len(steps)} steps")),
             ("user", _e(row["user"])), ("tags", _e(", ".join(sorted(run.user_tags))) or "<i>none</i>")]  # fmt: skip
    if isinstance(params, dict) and params:
        facts.append(("parameters", "<br>".join(f"{_e(k)} = <code>{_e(json.dumps(v))}</code>"
                                                for k, v in sorted(params.items()))))  # fmt: skip
    title = _title("Run", _link(run.pathspec, ledger, "run", flow, run_id), status)
    out = [_kv(facts, title), "<div class='lf-run'>"]
    for problem in problems:
        out.append(f"<div style='background:#fff7ed;padding:4px'>{_e(problem)}</div>")
    out.append(dag_svg(graph, statuses, counts) + _graph_text(graph))
    step_rows = []
    for s in order:
        v = steps.get(s)
        if v is None:
            step_rows.append([_e(s), _badge(None), "0", "", ""])
            continue
        spread = " / ".join(format_duration(v[k]) if isinstance(v[k], int | float) else "–"
                            for k in ("dmin", "davg", "dmax"))  # fmt: skip
        by = ", ".join(f"{n:,} {st}" for st, n in sorted(v["statuses"].items()))
        step_rows.append([_link(s, ledger, "step", flow, run_id, s), _badge(statuses.get(s)),
                          _e(f"{v['n']:,}"), _e(by), _e(spread)])  # fmt: skip
    out.append(_table(["step", "status", "tasks", "by status", "task duration min / mean / max"],
                      step_rows[:50], "lf-steps"))  # fmt: skip
    if len(step_rows) > 50:
        out.append(f"<div><i>{len(step_rows) - 50:,} more steps</i></div>")
    end = graph.get("end_step") if isinstance(graph.get("end_step"), str) else "end"
    final = reads.final_tasks(ledger, run._pk, step=end, limit=1) if end in steps else []
    if final:
        arts = _artifact_rows(ledger, final[0]["pk"])
        if arts:
            out.append(f"<div style='margin-top:6px'>Artifacts of <code>{_e(end)}</code> "
                       "(stored previews; nothing is loaded):</div>")  # fmt: skip
            out.append(
                _table(["name", "type", "size", "encoding", "preview"], arts, "lf-artifacts")
            )
    out.append("</div>")
    return "".join(out)


def task_html(task: Any) -> str:
    """Status, attempt (of how many), times and duration, foreach index and input, the
    exception, and the artifacts with their stored previews."""
    ledger, row = task._ledger, task._row
    flow, run_id, step, task_id = task.pathspec.split("/")
    attempts = reads.task_attempts(ledger, task._run._pk, step, task_id)
    which = f"{row['attempt']}" + (f" of {len(attempts)}" if len(attempts) > 1 else "")
    facts = [("attempt", _e(which)), ("started", _time(row["started_at"])),
             ("finished", _time(row["finished_at"]) if row["finished_at"] else "<i>not yet</i>"),
             ("duration", _e(_took(row["started_at"], row["finished_at"])))]  # fmt: skip
    try:
        stack = json.loads(row["foreach_stack"] or "[]")
    except (TypeError, ValueError):
        stack = []
    for frame in stack if isinstance(stack, list) else []:
        if isinstance(frame, list) and len(frame) >= 5:
            facts.append(("foreach", f"index {_e(frame[3])} of {_e(frame[2])} over "
                                     f"<code>{_e(frame[1])}</code>, input <code>{_e(frame[4])}</code>"))  # fmt: skip
    if len(attempts) > 1:
        facts.append(("attempts", ", ".join(f"{_e(a['attempt'])}: {_badge(a['status'])}"
                                            for a in attempts)))  # fmt: skip
    if row["exception_type"]:
        facts.append(("exception", f"<b>{_e(row['exception_type'])}</b>: {_e(row['exception'])}"))
    link = _link(task.pathspec, ledger, "task", flow, run_id, step, task_id)
    arts = _artifact_rows(ledger, task._pk)
    return (_kv(facts, _title("Task", link, row["status"])) + "<div class='lf-task'>"
            + (_table(["name", "type", "size", "encoding", "preview"], arts, "lf-artifacts")
               if arts else "") + "</div>")  # fmt: skip


def step_html(step: Any, limit: int = 100) -> str:
    """Task counts by status, the spread of durations, and the newest `limit` tasks (a
    10,000-task foreach shows one page, not a 10,000-row table)."""
    import itertools

    from ..views import queries as q

    run = step.parent
    flow, run_id, name = step.pathspec.split("/")
    v = q.step_summaries(step._ledger, run._pk).get(name)
    title = _title("Step", _link(step.pathspec, step._ledger, "step", flow, run_id, name),
                   step_status(list(v["statuses"])) if v else None)  # fmt: skip
    if v is None:
        return _kv([("tasks", "<i>none</i>")], title)
    by = ", ".join(f"{n:,} {st}" for st, n in sorted(v["statuses"].items()))
    spread = " / ".join(format_duration(v[k]) if isinstance(v[k], int | float) else "–"
                        for k in ("dmin", "davg", "dmax"))  # fmt: skip
    tasks = list(itertools.islice(step, limit + 1))
    rows = [[_link(t.pathspec, step._ledger, "task", flow, run_id, name, t.id),
             _badge(t._row["status"]), _e(t._row["attempt"]), _e(t._row["foreach_index"]),
             _e(_took(t._row["started_at"], t._row["finished_at"]))] for t in tasks[:limit]]  # fmt: skip
    more = (f"<div><i>… more tasks ({v['n'] - limit:,}): iterate {_e(repr(step))} for all"
            "</i></div>" if len(tasks) > limit else "")  # fmt: skip
    return (_kv([("tasks", _e(f"{v['n']:,} ({by})")),
                 ("task duration min / mean / max", _e(spread))], title)
            + _table(["task (newest first)", "status", "attempt", "index", "took"], rows,
                     "lf-tasks") + more)  # fmt: skip


def flow_html(flow: Any, limit: int = 10) -> str:
    """The newest `limit` runs: status, started, duration, tags."""
    runs = flow._runs(limit=limit)
    rows = [[_link(r.pathspec, flow._ledger, "run", flow.id, r.id), _badge(r.status),
             _time(r._row["created_at"]), _e(_took(r._row["created_at"], r._row["finished_at"])),
             _e(", ".join(sorted(r.user_tags)))] for r in runs]  # fmt: skip
    title = _title("Flow", _link(flow.id, flow._ledger, "", flow=flow.id))
    return _kv([("newest runs", _e(len(rows)))], title) + _table(
        ["run", "status", "started", "duration", "tags"], rows, "lf-runs"
    )


def artifact_html(artifact: Any) -> str:
    """Type, size, encoding and the stored preview; a small JSON value's structure."""
    from ..views.values import json_value, structure_html
    from .extras import stored_preview

    facts = [("type", _e(artifact.type)), ("size", _e(artifact.size)),
             ("encoding", _e(artifact.encoding)), ("sha", _e(artifact.sha))]  # fmt: skip
    shown = f"<pre style='white-space:pre-wrap'>{_e(stored_preview(artifact)[:2000])}</pre>"
    if artifact.encoding == "json" and artifact._row.get("computed") is None:
        ok, value = json_value(artifact._ledger, artifact.sha)
        if ok:
            try:
                shown = structure_html(value)
            except RecursionError:
                pass
    flow, run_id, step, task_id, name = artifact.pathspec.split("/")
    link = _link(artifact.pathspec, artifact._ledger, "artifact", flow, run_id, step, task_id, name)
    return _kv(facts, _title("DataArtifact", link)) + shown


# -- the runs of a flow as a DataFrame ---------------------------------------------------------


def runs_dataframe(flow: Any, *tags: str, artifacts: Iterable[str] = (),
                   limit: int | None = None) -> Any:  # fmt: skip
    """The runs of `flow` having every tag (as `flow.runs(*tags)`, in its namespace), newest
    first, as a pandas DataFrame: run_id, status, started_at, finished_at, duration (s),
    user, tags, a `params.NAME` column per parameter and a column per named artifact (its
    plain stored value, from the task that finished last; None when the value is not
    plain). One SQL query; nothing is unpickled."""
    import importlib

    try:
        pd = importlib.import_module("pandas")
    except ImportError:
        raise LedgerflowError("runs_dataframe needs pandas, which is not installed here: "
                              "pip install pandas") from None  # fmt: skip
    wanted = list(tags)
    if flow._namespace_check and flow._current_namespace:
        wanted.insert(0, flow._current_namespace)
    names = [str(a) for a in artifacts]
    found = reads.runs_table(flow._ledger, flow._row["id"], wanted, names, limit)
    records = []
    for r in found:
        try:
            run_params = json.loads(r["params"] or "{}")
        except ValueError:
            run_params = {}
        arts = json.loads(r["arts"] or "{}") if names else {}
        try:
            took = seconds_between(r["created_at"], r["finished_at"])
        except (TypeError, ValueError):
            took = None
        record = {"run_id": r["run_id"], "status": reads.shown_run_status(r),
                  "started_at": _local(r["created_at"]), "finished_at": _local(r["finished_at"]),
                  "duration": took, "user": r["user"], "tags": sorted(json.loads(r["tags"]))}  # fmt: skip
        if isinstance(run_params, dict):
            record.update({f"params.{k}": v for k, v in run_params.items()})
        record.update({n: arts.get(n) for n in names})
        records.append(record)
    columns = ["run_id", "status", "started_at", "finished_at", "duration", "user", "tags"]
    frame = pd.DataFrame.from_records(records, columns=list(dict.fromkeys(
        columns + [k for rec in records for k in rec])))  # fmt: skip
    return frame


def _local(iso: Any) -> Any:
    from ..clock import parse_iso

    try:
        return parse_iso(iso)
    except (TypeError, ValueError):
        return None
