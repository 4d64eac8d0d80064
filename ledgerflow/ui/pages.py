"""The pages of `ledgerflow ui`, each a function from the app and the request's parts to
HTML, built from the pieces in views/. Every string from the ledger is escaped (a received
file can hold text anywhere, even in INTEGER columns); nothing here unpickles (see
views/values.py). Wide steps are counted in SQL and summarised, long lists are paged by
keyset, and logs are shown by their tail (views/logview.py), so a 10,000-task run's pages
cost what a 10-task run's do."""

from __future__ import annotations

import json
import re
from typing import Any

from ..cards.dag import step_status
from ..clock import format_duration, screen_time, seconds_between
from ..exceptions import MetaflowNotFound
from ..views import queries as q
from ..views.gantt import gantt_svg
from ..views.graphview import dag_svg, step_order
from ..views.layout import badge, esc, frame, link, path, table

# A page that does not exist answers 404, as does any object a page looks up and misses.
NotFound = MetaflowNotFound

WIDE = 20  # a step with more tasks than this is one row on the timeline, not one per task
MAX_TASK_ROWS = 300  # task rows the timeline draws at most
STEPS_PER_PAGE = 100


def _page(app: Any, title: str, body: str, search: str = "") -> str:
    return frame(title, body, app.path.name, search)


def _duration(start: Any, end: Any) -> str:
    try:
        return format_duration(seconds_between(start, end))
    except (TypeError, ValueError):  # a received file's text where a time belongs
        return ""


def _time(iso: Any) -> str:
    """Local time with its offset, as every screen shows it (clock.py); a stored value that
    is not a time is shown as it is."""
    try:
        return esc(screen_time(iso))
    except (TypeError, ValueError, OverflowError):
        return esc(iso)


def _num(value: Any) -> str:
    return f'<span class="num">{esc(value)}</span>'


def _since(start: Any) -> str:
    from ..clock import now_iso

    return _duration(start, now_iso())


# -- runs ------------------------------------------------------------------------------------


def runs_page(app: Any, flow: str | None, status: str | None, tag: str | None,
              after: str | None) -> str:  # fmt: skip
    rows, cursor = q.runs_page(app.ledger, flow, status, tag, after)
    flows = "".join(f'<option{" selected" if f == flow else ""}>{esc(f)}</option>'
                    for f in q.flows(app.ledger))  # fmt: skip
    statuses = "".join(f'<option{" selected" if s == status else ""}>{s}</option>'
                       for s in ("running", "succeeded", "failed", "crashed"))  # fmt: skip
    form = ('<form class="filters" method="get" action="/">'
            f'<select name="flow"><option value="">all flows</option>{flows}</select> '
            f'<select name="status"><option value="">any status</option>{statuses}</select> '
            f'<input name="tag" placeholder="tag" value="{esc(tag or "")}"> '
            '<button type="submit">Filter</button></form>')  # fmt: skip
    table_rows = [[
        link(r["run_id"], path("run", r["flow"], r["run_id"])), esc(r["flow"]),
        badge(r["shown_status"]), _time(r["created_at"]), esc(_run_duration(r)),
        _num(r["tasks"]), esc(r["user"] or ""),
    ] for r in rows]  # fmt: skip
    body = [f"<h1>Runs</h1>{form}"]
    body.append(
        table(["run", "flow", "status", "started", "duration", "tasks", "user"], table_rows, "runs")
        if rows
        else '<p class="muted">No runs match.</p>'
    )
    if cursor:
        body.append(
            f'<div class="pager">{link("Older runs →", path("", flow=flow, status=status, tag=tag, after=cursor))}</div>'
        )
    return _page(app, "Runs", "".join(body))


def _run_duration(run: dict[str, Any]) -> str:
    if run["finished_at"] is None:
        since = _since(run["created_at"])
        return f"running for {since}" if run["shown_status"] == "running" and since else ""
    return _duration(run["created_at"], run["finished_at"])


# -- a run -----------------------------------------------------------------------------------


def _run(app: Any, flow: str, run_id: str) -> dict[str, Any]:
    row = q.run(app.ledger, flow, run_id)
    if row is None:
        raise NotFound(f"no run {flow}/{run_id} in {app.path.name}")
    return row


def _finished(run: dict[str, Any]) -> str:
    if run["finished_at"] is not None:
        return _time(run["finished_at"])
    if run["shown_status"] == "crashed":
        return '<span class="muted">never: its process is gone (crashed)</span>'
    return '<span class="muted">not yet (running)</span>'


def _params(params: Any) -> str:
    if isinstance(params, dict) and params:
        return table(["parameter", "value"], [[esc(k), f"<code>{esc(json.dumps(v))}</code>"]
                                              for k, v in sorted(params.items())], "kv")  # fmt: skip
    return esc(json.dumps(params)) if params else '<span class="muted">none</span>'


def run_page(app: Any, flow: str, run_id: str, page: int = 1) -> str:
    run = _run(app, flow, run_id)
    steps = q.step_summaries(app.ledger, run["pk"])
    graph = run["graph"]
    order = step_order(graph, list(steps))
    statuses = {s: step_status(list(v["statuses"])) for s, v in steps.items()}
    counts = {s: v["n"] for s, v in steps.items()}
    info = [
        ["status", badge(run["shown_status"])], ["started", _time(run["created_at"])],
        ["finished", _finished(run)], ["duration", esc(_run_duration(run))],
        ["tasks", esc(f"{sum(counts.values()):,} in {len(steps)} steps")],
        ["user", esc(run["user"])], ["host", esc(run["host"])],
        ["tags", esc(", ".join(run["tags"])) or '<span class="muted">none</span>'],
    ]  # fmt: skip
    if run["origin_run_id"]:
        origin = run["origin_run_id"]
        shown = (link(origin, path("run", flow, origin)) if q.run(app.ledger, flow, str(origin))
                 else esc(origin) + ' <span class="muted">(not in this ledger)</span>')  # fmt: skip
        info.append(["resumed from", shown])
    body = [f"<h1>{esc(flow)}/{esc(run_id)}</h1>"]
    if run["shown_status"] == "running":
        body.append(
            f'<div data-poll="{esc(path("api", "run", flow, run_id))}" data-kind="run" '
            'data-every="2000"><span class="muted">Running: this page reloads when tasks '
            "finish.</span></div>"
        )
    for problem in run["graph_problems"]:
        body.append(f'<div class="warn">{esc(problem)}</div>')
    body.append('<div class="flex"><div>')
    body.append(table(["", ""], [[esc(k), v] for k, v in info], "kv"))
    body.append("<h2>Parameters</h2>" + _params(run["params"]))
    body.append(f"<p>{link('Compare with another run', path('diff', a=f'{flow}/{run_id}'))}</p>")
    body.append("</div><div><h2>Graph</h2>")
    body.append(dag_svg(graph, statuses, counts, lambda s: path("step", flow, run_id, s)))
    body.append("</div></div><h2>Timeline</h2>")
    body.append(_timeline(app, run, order, steps))
    body.append(_steps_table(flow, run_id, order, steps, statuses, page))
    return _page(app, f"{flow}/{run_id}", "".join(body))


def _timeline(app: Any, run: dict[str, Any], order: list[str],
              steps: dict[str, dict[str, Any]]) -> str:  # fmt: skip
    """A row per task of each narrow step, a row per wide step (its spread)."""
    flow, run_id = run["flow"], run["run_id"]
    narrow = [s for s in order if s in steps and steps[s]["n"] <= WIDE]
    tasks = q.tasks_of_steps(app.ledger, run["pk"], narrow, MAX_TASK_ROWS) if narrow else []
    by_step: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        by_step.setdefault(t["step"], []).append(t)
    rows: list[dict[str, Any]] = []
    for s in order:
        if s not in steps:
            continue
        if steps[s]["n"] > WIDE:
            v = steps[s]
            spread = " / ".join(format_duration(v[k]) if isinstance(v[k], int | float) else "–"
                                for k in ("dmin", "davg", "dmax"))  # fmt: skip
            rows.append({"label": f"{s} ×{v['n']:,}", "status": step_status(list(v["statuses"])),
                         "start": v["first"], "end": v["last"] if v["done"] == v["n"] else None,
                         "summary": True, "step": s,
                         "tip": f"{s}: {v['n']:,} tasks, {v['done']:,} finished; task duration "
                                f"min / mean / max {spread}"})  # fmt: skip
        for t in by_step.get(s, []):
            rows.append({"label": f"{t['step']}/{t['task_id']}", "status": t["status"],
                         "start": t["started_at"], "end": t["finished_at"], "task": t,
                         "tip": f"{t['step']}/{t['task_id']} {t['status']} "
                                f"{_duration(t['started_at'], t['finished_at'])}"})  # fmt: skip

    def target(row: dict[str, Any]) -> str:
        if "task" in row:
            return path("task", flow, run_id, row["task"]["step"], row["task"]["task_id"])
        return path("step", flow, run_id, row["step"])

    out = gantt_svg(rows, target)
    if len(tasks) >= MAX_TASK_ROWS:
        out += f'<p class="muted">The first {MAX_TASK_ROWS} tasks of narrow steps are drawn.</p>'
    return out


def _steps_table(flow: str, run_id: str, order: list[str], steps: dict[str, dict[str, Any]],
                 statuses: dict[str, str | None], page: int) -> str:  # fmt: skip
    pages = max(1, -(-len(order) // STEPS_PER_PAGE))
    page = min(max(page, 1), pages)
    shown = order[(page - 1) * STEPS_PER_PAGE : page * STEPS_PER_PAGE]
    rows = []
    for s in shown:
        v = steps.get(s)
        if v is None:
            rows.append([link(s, path("step", flow, run_id, s)), badge(None), _num(0), "", "", ""])
            continue
        counts = ", ".join(f"{n:,} {st}" for st, n in sorted(v["statuses"].items()))
        spread = " / ".join(format_duration(v[k]) if isinstance(v[k], int | float) else "–"
                            for k in ("dmin", "davg", "dmax"))  # fmt: skip
        rows.append([link(s, path("step", flow, run_id, s)), badge(statuses.get(s)),
                     _num(f"{v['n']:,}"), esc(counts), _time(v["first"]), esc(spread)])  # fmt: skip
    out = "<h2>Steps</h2>" + table(
        ["step", "status", "tasks", "by status", "started", "task duration min / mean / max"],
        rows, "summary")  # fmt: skip
    if pages > 1:
        nav = []
        if page > 1:
            nav.append(link("← previous steps", path("run", flow, run_id, page=page - 1)))
        nav.append(f"steps {(page - 1) * STEPS_PER_PAGE + 1:,}–"
                   f"{(page - 1) * STEPS_PER_PAGE + len(shown):,} of {len(order):,}")  # fmt: skip
        if page < pages:
            nav.append(link("next steps →", path("run", flow, run_id, page=page + 1)))
        out += f'<div class="pager">{" · ".join(nav)}</div>'
    return out


def run_status_json(app: Any, flow: str, run_id: str) -> dict[str, Any]:
    run = _run(app, flow, run_id)
    return {"status": run["shown_status"], "signature": q.run_signature(app.ledger, run["pk"]),
            "live": run["shown_status"] == "running"}  # fmt: skip


def step_page(app: Any, flow: str, run_id: str, step: str, after: str | None = None) -> str:
    run = _run(app, flow, run_id)
    cursor = None
    if after:
        length, _, task_id = after.partition("|")
        cursor = (int(length), task_id) if length.isdigit() else None
    tasks, total = q.step_tasks_page(app.ledger, run["pk"], step, cursor)
    more = len(tasks) > q.PAGE
    tasks = tasks[: q.PAGE]
    if not total and step not in run["graph"]["steps"]:
        raise NotFound(f"run {flow}/{run_id} has no step {step!r}")
    rows = [[link(t["task_id"], path("task", flow, run_id, step, t["task_id"])), badge(t["status"]),
             esc(t["attempt"]), esc(_foreach_label(t)), _time(t["started_at"]),
             esc(_duration(t["started_at"], t["finished_at"])),
             esc(t["exception_type"] or "")] for t in tasks]  # fmt: skip
    body = [f"<h1>{link(f'{flow}/{run_id}', path('run', flow, run_id))}/{esc(step)}</h1>"]
    body.append(f"<p>{total:,} task{'s' if total != 1 else ''}</p>")
    body.append(table(["task", "status", "attempt", "foreach", "started", "duration",
                       "exception"], rows))  # fmt: skip
    if more:
        last = tasks[-1]
        nxt = f"{len(str(last['task_id']))}|{last['task_id']}"
        body.append(
            f'<div class="pager">{link("Next tasks →", path("step", flow, run_id, step, after=nxt))}</div>'
        )
    return _page(app, f"{flow}/{run_id}/{step}", "".join(body))


def _foreach_frames(task: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The task's foreach_stack frames (step, var, num_splits, index, value), or []."""
    try:
        stack = json.loads(task["foreach_stack"] or "[]")
    except (TypeError, ValueError, RecursionError):
        return []
    return [tuple(f) + (None,) * (5 - len(f)) for f in stack if isinstance(f, list)] if (
        isinstance(stack, list)) else []  # fmt: skip


def _foreach_label(task: dict[str, Any]) -> str:
    frames = _foreach_frames(task)
    if not frames:
        return "" if task["foreach_index"] is None else str(task["foreach_index"])
    return " ".join(f"[{f[3]}]" for f in frames)


# -- a task ------------------------------------------------------------------------------------


def _task(app: Any, flow: str, run_id: str, step: str, task_id: str) -> tuple[dict, list]:
    run = _run(app, flow, run_id)
    attempts = q.task_attempts(app.ledger, run["pk"], step, task_id)
    if not attempts:
        raise NotFound(f"no task {flow}/{run_id}/{step}/{task_id}")
    return run, attempts


def task_page(app: Any, flow: str, run_id: str, step: str, task_id: str,
              attempt: int | None = None, find: str = "", stream: str = "") -> str:  # fmt: skip
    run, attempts = _task(app, flow, run_id, step, task_id)
    task = attempts[-1]
    if attempt is not None:
        chosen = [a for a in attempts if a["attempt"] == attempt]
        if not chosen:
            raise NotFound(f"task {flow}/{run_id}/{step}/{task_id} has no attempt {attempt}")
        task = chosen[0]
    live = run["shown_status"] == "running" and task["finished_at"] is None
    title = f"{flow}/{run_id}/{step}/{task_id}"
    if task["finished_at"] is not None:
        ended = f"finished {_time(task['finished_at'])} · took " + esc(
            _duration(task["started_at"], task["finished_at"])
        )
    elif live:
        ended = f"running for {esc(_since(task['started_at']))}"
    else:
        ended = f"never finished (the run is {esc(run['shown_status'])})"
    which = f"attempt {esc(task['attempt'])}" + (
        f" of {len(attempts)}" if len(attempts) > 1 else ""
    )
    body = [
        f"<h1>{link(f'{flow}/{run_id}', path('run', flow, run_id))}/"
        f"{link(step, path('step', flow, run_id, step))}/{esc(task_id)}</h1>",
        f"<div>{badge(task['status'])} {which} · started {_time(task['started_at'])} · {ended}"
        "</div>",
    ]
    frames = _foreach_frames(task)
    if frames:
        lines = [f"index <b>{esc(f[3])}</b> of {esc(f[2])} over <code>{esc(f[1])}</code> "
                 f"(split in {esc(f[0])}), input <code>{esc(f[4])}</code>" for f in frames]  # fmt: skip
        body.append('<div class="foreach"><b>foreach</b>: ' + "; inside it ".join(lines) + "</div>")
    if len(attempts) > 1:
        here = path("task", flow, run_id, step, task_id)
        rows = [[link(f"attempt {a['attempt']}", path("task", flow, run_id, step, task_id,
                                                      attempt=a["attempt"])),
                 badge(a["status"]), _time(a["started_at"]),
                 esc(_duration(a["started_at"], a["finished_at"])),
                 esc(a["exception_type"] or "") + (" (shown)" if a is task else "")]
                for a in attempts]  # fmt: skip
        body.append("<h2>Attempts</h2>" + table(["attempt", "status", "started", "took",
                                                 "exception"], rows, "attempts"))  # fmt: skip
        if task is not attempts[-1]:
            body.append(f'<div class="warn">An earlier attempt; {link("the final one", here)} '
                        "is what the Client API shows.</div>")  # fmt: skip
    if task["exception_type"]:
        body.append(
            f'<div class="err" id="exception"><b>{esc(task["exception_type"])}</b>: '
            f"{esc(task['exception'])}<pre>{esc(task['traceback'] or '')}</pre></div>"
        )
    if task["origin_pathspec"]:
        origin = str(task["origin_pathspec"])
        parts = origin.split("/")
        how = ("by resume" if len(parts) == 4 and parts[1] == run.get("origin_run_id")
               else "by run --reuse (its step code and inputs matched)")  # fmt: skip
        target = link(origin, path("task", *parts)) if len(parts) == 4 else esc(origin)
        body.append(f'<p class="muted">Not run again: cloned {how} from {target}</p>')
    body.append(_cards(app, task))
    body.append(_artifacts(app, flow, run_id, step, task_id, task))
    body.append(_logs(app, task, live, find, stream))
    return _page(app, title, "".join(body))


def _cards(app: Any, task: dict[str, Any]) -> str:
    from ..reads import card_rows

    cards = card_rows(app.ledger, [task["pk"]])
    if not cards:
        return ""
    body = ["<h2>Cards</h2>"]
    for c in cards:
        label = f"{c['type']}" + (f" (id {c['card_id']})" if c["card_id"] else "")
        body.append(f"<div><b>{esc(label)}</b> · {link('open alone', path('card', c['id']))}</div>")
        if c["error"]:
            body.append(f'<div class="warn">This card failed to render: <pre>{esc(c["error"])}'
                        "</pre></div>")  # fmt: skip
        if c["sha"]:
            # sandbox: a card (perhaps from someone else) runs no script and cannot reach
            # this app; the card route also sends a CSP that forbids any fetch.
            body.append(f'<iframe class="card-frame" sandbox="" title="{esc(label)}" '
                        f'src="{esc(path("card", c["id"]))}"></iframe>')  # fmt: skip
    return "".join(body)


def _artifacts(app: Any, flow: str, run_id: str, step: str, task_id: str,
               task: dict[str, Any]) -> str:  # fmt: skip
    arts = q.artifacts(app.ledger, task["pk"])
    rows = []
    for a in arts:
        shown = a["value"] if a["value"] is not None else (a["preview"] or "")
        rows.append([link(a["name"], path("artifact", flow, run_id, step, task_id, a["name"])),
                     esc(a["type"]), _num(a["size"]), esc(a["encoding"]),
                     f"<pre>{esc(str(shown)[:300])}</pre>",
                     "inherited" if a["inherited"] else ""])  # fmt: skip
    return "<h2>Artifacts</h2>" + (
        table(["name", "type", "size", "encoding", "value / preview", ""], rows)
        if rows
        else '<p class="muted">None.</p>'
    )


def _logs(app: Any, task: dict[str, Any], live: bool, find: str = "", stream: str = "") -> str:
    """Each stream's tail (or, for a search hit, the window holding the first match of
    `find`), with links to earlier output and the download; a live task polls for more."""
    from ..views.logview import STREAMS, TAIL, log_find, log_page, log_tail

    ledger = app.ledger
    tails = {s: log_tail(ledger, task["pk"], s, TAIL) for s in STREAMS}
    words = find.replace('"', " ").split()
    found = log_find(ledger, task["pk"], stream, words[0]) if words and stream in STREAMS else None
    if found is not None:
        tails[stream] = log_page(ledger, task["pk"], stream, max(0, found - 2000), TAIL)
        live = False  # a window in the middle: nothing to append to
    ends = " ".join(f'data-{s}="{tails[s]["end"]}"' for s in STREAMS)
    poll = (f' data-poll="{esc(path("api", "logs", task["pk"]))}" data-kind="logs" '
            f'data-live="1" {ends}') if live else ""  # fmt: skip
    out = [f'<h2>Logs</h2><div id="logs"{poll}>']
    for s in STREAMS:
        t = tails[s]
        links = [link("download", path("download", task["pk"], s))]
        if t["offset"] > 0:
            links.insert(0, link("earlier output", path("log", task["pk"], s,
                                                        offset=max(0, t["offset"] - TAIL))))  # fmt: skip
        note = (f'<span class="muted">the last {t["end"] - t["offset"]:,} of {t["size"]:,} '
                "bytes</span> · " if t["offset"] > 0 else "")  # fmt: skip
        if t["end"] < t["size"]:
            note = (
                f'<span class="muted">bytes {t["offset"]:,}–{t["end"]:,} of '
                f"{t['size']:,}</span> · " + link("the end", path("log", task["pk"], s)) + " · "
            )
        text = esc(t["text"])
        if found is not None and s == stream:
            text = re.sub(re.escape(esc(words[0])), lambda m: f"<mark>{m.group(0)}</mark>", text,
                          flags=re.IGNORECASE)  # fmt: skip
        out.append(f"<h3>{s}</h3><div>{note}{' · '.join(links)}</div>"
                   f'<pre id="{s}">{text}</pre>')  # fmt: skip
    out.append("</div>")
    return "".join(out)


def log_owner(app: Any, task_pk: int, stream: str) -> tuple[str, str, str, str]:
    """(flow, run_id, step, task_id) of a task attempt's log; NotFound otherwise."""
    from ..views.logview import STREAMS

    row = q.task_row(app.ledger, task_pk)
    if row is None or stream not in STREAMS:
        raise NotFound(f"no {stream} log of task attempt {task_pk}")
    return row["flow"], row["run_id"], row["step"], row["task_id"]


def log_viewer(app: Any, task_pk: int, stream: str, offset: int) -> str:
    """A page of one log stream (PAGE bytes from `offset`; -1: the last page), with
    links to the pages before and after it and the download."""
    from ..views.logview import PAGE, log_page, log_size

    flow, run_id, step, task_id = log_owner(app, task_pk, stream)
    ledger = app.ledger
    if offset < 0:
        offset = max(0, log_size(ledger, task_pk, stream) - PAGE)
    page = log_page(ledger, task_pk, stream, offset, PAGE)
    nav = []
    if page["offset"] > 0:
        nav.append(
            link("← earlier", path("log", task_pk, stream, offset=max(0, page["offset"] - PAGE)))
        )
    nav.append(f"bytes {page['offset']:,}–{page['end']:,} of {page['size']:,}")
    if page["end"] < page["size"]:
        nav.append(link("later →", path("log", task_pk, stream, offset=page["end"])))
    nav.append(link("download", path("download", task_pk, stream)))
    task_link = link(f"{flow}/{run_id}/{step}/{task_id}", path("task", flow, run_id, step, task_id))
    body = (f"<h1>{task_link} {esc(stream)}</h1>"
            f'<div class="pager">{" · ".join(nav)}</div><pre id="{esc(stream)}">'
            f"{esc(page['text'])}</pre>")  # fmt: skip
    return _page(app, f"{flow}/{run_id}/{step}/{task_id} {stream}", body)


def logs_json(app: Any, task_pk: int, offsets: dict[str, int]) -> dict[str, Any]:
    """What each stream printed since `offsets` (at most a tail's worth), and whether the
    task is still live: a live page's poll carries only what is new."""
    from ..views.logview import STREAMS, TAIL, log_page

    row = q.task_state(app.ledger, task_pk)
    if row is None:
        raise NotFound(f"no task with id {task_pk}")
    live = row["shown_status"] == "running" and row["finished_at"] is None
    out: dict[str, Any] = {"live": live}
    for s in STREAMS:
        out[s] = log_page(app.ledger, task_pk, s, offsets.get(s, 0), TAIL)
    return out


# -- an artifact -------------------------------------------------------------------------------


def artifact_page(app: Any, flow: str, run_id: str, step: str, task_id: str, name: str,
                  load: bool = False) -> str:  # fmt: skip
    from ..exceptions import LedgerflowError
    from ..views.values import json_value, load_pickled, preview_structure_html, structure_html

    run, attempts = _task(app, flow, run_id, step, task_id)
    art = q.artifact(app.ledger, attempts[-1]["pk"], name)
    if art is None:
        raise NotFound(f"task {flow}/{run_id}/{step}/{task_id} has no artifact {name!r}")
    pathspec = f"{flow}/{run_id}/{step}/{task_id}/{name}"
    body = [f'<h1>{link(f"{flow}/{run_id}/{step}/{task_id}", path("task", flow, run_id, step, task_id))}'
            f"/{esc(name)}</h1>",
            table(["type", "size", "encoding", "sha", "python"],
                  [[esc(art["type"]), esc(art["size"]), esc(art["encoding"]), esc(art["sha"]),
                    esc(art["python_version"] or "")]])]  # fmt: skip
    if art["encoding"] == "json":
        ok, value = json_value(app.ledger, art["sha"])
        if ok:
            try:
                text = json.dumps(value, indent=2, ensure_ascii=False)
                shape = structure_html(value)
            except RecursionError:
                ok, value = False, "it is nested too deeply to show"
        if ok:
            body.append(f"<h2>Structure</h2>{shape}<h2>Value</h2><pre>{esc(text)}</pre>")
        else:
            body.append(f"<h2>Preview</h2><pre>{esc(art['preview'])}</pre>"
                        f'<p class="muted">The value is not shown: {esc(value)}.</p>')  # fmt: skip
        return _page(app, pathspec, "".join(body))
    body.append(preview_structure_html(art["preview"]))
    body.append(f"<h2>Preview</h2><pre>{esc(art['preview'])}</pre>")
    if load:
        try:
            body.append(
                f"<h2>Value</h2><pre>{esc(load_pickled(app.ledger, run['pk'], pathspec, art['sha']))}</pre>"
            )
        except LedgerflowError as e:
            body.append(f'<div class="warn">Not loaded: {esc(e)}</div>')
        # The pickle itself failed to load (a missing module, ...).
        except Exception as e:  # noqa: BLE001
            body.append(
                f'<div class="err">The value could not be loaded: {esc(type(e).__name__)}: {esc(e)}</div>'
            )
    else:
        body.append('<h2>Value</h2><p>This value is a pickle. Loading it runs code from the '
                    "ledger, so it is loaded only when you ask, and only from a trusted ledger "
                    "(written on this machine, or `ledgerflow ui --trust`).</p>"
                    f'<form method="post" action="{esc(path("artifact", flow, run_id, step, task_id, name))}">'
                    '<button type="submit" name="load" value="1">Load value (unpickles)</button>'
                    "</form>")  # fmt: skip
    return _page(app, pathspec, "".join(body))
