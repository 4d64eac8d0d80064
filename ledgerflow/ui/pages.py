"""The pages of `ledgerflow ui`, each a function from the app and the request's parts to
HTML. Every string from the ledger is escaped; nothing here unpickles (see values.py)."""

from __future__ import annotations

import json
from typing import Any

from ..cards.dag import dag_svg, layers, step_status
from ..clock import format_duration, screen_time, seconds_between
from ..exceptions import MetaflowNotFound
from . import queries as q
from .gantt import gantt_svg
from .layout import badge, esc, frame, link, path, table

# A page that does not exist answers 404, as does any object a page looks up and misses.
NotFound = MetaflowNotFound


def _page(app: Any, title: str, body: str, search: str = "") -> str:
    return frame(title, body, app.path.name, search)


def _duration(start: str | None, end: str | None) -> str:
    return format_duration(seconds_between(start, end))


def _time(iso: str | None) -> str:
    return esc(screen_time(iso))  # local time with its offset, as every screen (clock.py)


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
        badge(r["shown_status"]), _time(r["created_at"]),
        esc(_duration(r["created_at"], r["finished_at"])), f'<span class="num">{r["tasks"]}</span>',
        esc(r["user"] or ""),
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


# -- a run -----------------------------------------------------------------------------------


def _run(app: Any, flow: str, run_id: str) -> dict[str, Any]:
    row = q.run(app.ledger, flow, run_id)
    if row is None:
        raise NotFound(f"no run {flow}/{run_id} in {app.path.name}")
    return row


def step_order(run: dict[str, Any], tasks: list[dict[str, Any]]) -> list[str]:
    order = [s for layer in layers(run["graph"]) for s in layer] if run["graph"] else []
    return order + sorted({t["step"] for t in tasks} - set(order))


def run_page(app: Any, flow: str, run_id: str) -> str:
    run = _run(app, flow, run_id)
    tasks = q.final_tasks(app.ledger, run["pk"])
    by_step: dict[str, list[str]] = {}
    for t in tasks:
        by_step.setdefault(t["step"], []).append(t["status"])
    statuses = {s: step_status(v) for s, v in by_step.items()}
    order = step_order(run, tasks)
    info = [
        ["status", badge(run["shown_status"])], ["started", _time(run["created_at"])],
        ["finished", _time(run["finished_at"])],
        ["duration", esc(_duration(run["created_at"], run["finished_at"]))],
        ["user", esc(run["user"])], ["host", esc(run["host"])],
        ["tags", esc(", ".join(run["tags"]))],
        ["parameters", esc(json.dumps(run["params"], sort_keys=True))],
    ]  # fmt: skip
    if run["origin_run_id"]:
        info.append(
            ["resumed from", link(run["origin_run_id"], path("run", flow, run["origin_run_id"]))]
        )
    body = [f"<h1>{esc(flow)}/{esc(run_id)}</h1>"]
    if run["shown_status"] == "running":
        body.append(
            f'<div data-poll="{esc(path("api", "run", flow, run_id))}" data-every="2000">'
            '<span class="muted">Running: this page reloads when tasks finish.</span></div>'
        )
    body.append('<div class="flex"><div>')
    body.append("".join(f"<div><b>{esc(k)}</b>: {v}</div>" for k, v in info))
    body.append(f"<p>{link('Compare with another run', path('diff', a=f'{flow}/{run_id}'))}</p>")
    body.append("</div><div><h2>Graph</h2>")
    body.append(
        dag_svg(run["graph"], statuses, lambda s: path("step", flow, run_id, s))
        if run["graph"]
        else '<p class="muted">No graph stored.</p>'
    )
    body.append("</div></div><h2>Timeline</h2>")
    body.append(
        gantt_svg(tasks, order, lambda t: path("task", flow, run_id, t["step"], t["task_id"]))
    )
    if len(tasks) >= q.MAX_GANTT_TASKS:
        body.append(f'<p class="muted">The first {q.MAX_GANTT_TASKS} tasks are shown.</p>')
    rows = [[link(s, path("step", flow, run_id, s)), badge(statuses.get(s)),
             str(len(by_step.get(s, [])))] for s in order]  # fmt: skip
    body.append("<h2>Steps</h2>" + table(["step", "status", "tasks"], rows))
    return _page(app, f"{flow}/{run_id}", "".join(body))


def run_status_json(app: Any, flow: str, run_id: str) -> dict[str, Any]:
    run = _run(app, flow, run_id)
    return {"status": run["shown_status"], "signature": q.run_signature(app.ledger, run["pk"]),
            "live": run["shown_status"] == "running"}  # fmt: skip


def step_page(app: Any, flow: str, run_id: str, step: str) -> str:
    run = _run(app, flow, run_id)
    tasks = q.final_tasks(app.ledger, run["pk"], step, limit=10_000)
    if not tasks and step not in (run["graph"].get("steps") or {}):
        raise NotFound(f"run {flow}/{run_id} has no step {step!r}")
    rows = [[link(t["task_id"], path("task", flow, run_id, step, t["task_id"])), badge(t["status"]),
             esc(t["attempt"]), esc("" if t["foreach_index"] is None else t["foreach_index"]),
             _time(t["started_at"]), esc(_duration(t["started_at"], t["finished_at"])),
             esc(t["exception_type"] or "")] for t in tasks]  # fmt: skip
    body = f"<h1>{link(f'{flow}/{run_id}', path('run', flow, run_id))}/{esc(step)}</h1>" + table(
        ["task", "status", "attempt", "index", "started", "duration", "exception"], rows
    )
    return _page(app, f"{flow}/{run_id}/{step}", body)


# -- a task ------------------------------------------------------------------------------------


def _task(app: Any, flow: str, run_id: str, step: str, task_id: str) -> tuple[dict, list]:
    run = _run(app, flow, run_id)
    attempts = q.task_attempts(app.ledger, run["pk"], step, task_id)
    if not attempts:
        raise NotFound(f"no task {flow}/{run_id}/{step}/{task_id}")
    return run, attempts


def task_page(app: Any, flow: str, run_id: str, step: str, task_id: str) -> str:
    from ..reads import card_rows

    run, attempts = _task(app, flow, run_id, step, task_id)
    task = attempts[-1]
    logs = q.logs(app.ledger, task["pk"])
    live = run["shown_status"] == "running" and task["finished_at"] is None
    title = f"{flow}/{run_id}/{step}/{task_id}"
    body = [
        f"<h1>{link(f'{flow}/{run_id}', path('run', flow, run_id))}/"
        f"{link(step, path('step', flow, run_id, step))}/{esc(task_id)}</h1>",
        f"<div>{badge(task['status'])} attempt {esc(task['attempt'])} · started "
        f"{_time(task['started_at'])} · {esc(_duration(task['started_at'], task['finished_at']))}"
        "</div>",
    ]
    if task["exception_type"]:
        body.append(
            f'<div class="err"><b>{esc(task["exception_type"])}</b>: '
            f"{esc(task['exception'])}<pre>{esc(task['traceback'] or '')}</pre></div>"
        )
    if task["origin_pathspec"]:
        body.append(f'<p class="muted">Cloned by resume from {esc(task["origin_pathspec"])}</p>')
    cards = card_rows(app.ledger, [task["pk"]])
    if cards:
        body.append("<h2>Cards</h2>")
        for c in cards:
            label = f"{c['type']}" + (f" (id {c['card_id']})" if c["card_id"] else "")
            body.append(
                f"<div><b>{esc(label)}</b> · {link('open alone', path('card', c['id']))}</div>"
            )
            if c["error"]:
                body.append(
                    f'<div class="warn">This card failed to render: '
                    f"<pre>{esc(c['error'])}</pre></div>"
                )
            if c["sha"]:
                # sandbox: a card (perhaps from someone else) runs no script and cannot reach
                # this app; the card route also sends a CSP that forbids any fetch.
                body.append(
                    f'<iframe class="card-frame" sandbox="" title="{esc(label)}" '
                    f'src="{esc(path("card", c["id"]))}"></iframe>'
                )
    arts = q.artifacts(app.ledger, task["pk"])
    rows = [[link(a["name"], path("artifact", flow, run_id, step, task_id, a["name"])),
             esc(a["type"]), f'<span class="num">{a["size"]}</span>', esc(a["encoding"]),
             f"<pre>{esc(a['preview'][:300])}</pre>",
             "inherited" if a["inherited"] else ""] for a in arts]  # fmt: skip
    body.append(
        "<h2>Artifacts</h2>"
        + (
            table(["name", "type", "size", "encoding", "preview", ""], rows)
            if rows
            else '<p class="muted">None.</p>'
        )
    )
    poll = f' data-poll="{esc(path("api", "logs", task["pk"]))}" data-live="1"' if live else ""
    body.append(
        f'<h2>Logs</h2><div id="logs"{poll}><h3>stdout</h3><pre id="stdout">'
        f'{esc(logs["stdout"])}</pre><h3>stderr</h3><pre id="stderr">'
        f"{esc(logs['stderr'])}</pre></div>"
    )
    if len(attempts) > 1:
        rows = [[esc(a["attempt"]), badge(a["status"]), _time(a["started_at"]),
                 esc(a["exception_type"] or "")] for a in attempts]  # fmt: skip
        body.append(
            "<h2>Attempts</h2>" + table(["attempt", "status", "started", "exception"], rows)
        )
    return _page(app, title, "".join(body))


def logs_json(app: Any, task_pk: int) -> dict[str, Any]:
    row = q.task_state(app.ledger, task_pk)
    if row is None:
        raise NotFound(f"no task with id {task_pk}")
    live = row["shown_status"] == "running" and row["finished_at"] is None
    return {**q.logs(app.ledger, task_pk), "live": live}


# -- an artifact -------------------------------------------------------------------------------


def artifact_page(app: Any, flow: str, run_id: str, step: str, task_id: str, name: str,
                  load: bool = False) -> str:  # fmt: skip
    from ..exceptions import LedgerflowError
    from .values import json_text, load_pickled

    run, attempts = _task(app, flow, run_id, step, task_id)
    art = q.artifact(app.ledger, attempts[-1]["pk"], name)
    if art is None:
        raise NotFound(f"task {flow}/{run_id}/{step}/{task_id} has no artifact {name!r}")
    pathspec = f"{flow}/{run_id}/{step}/{task_id}/{name}"
    body = [f'<h1>{link(f"{flow}/{run_id}/{step}/{task_id}", path("task", flow, run_id, step, task_id))}'
            f"/{esc(name)}</h1>",
            table(["type", "size", "encoding", "sha", "python"],
                  [[esc(art["type"]), esc(art["size"]), esc(art["encoding"]), esc(art["sha"]),
                    esc(art["python_version"] or "")]]),
            f"<h2>Preview</h2><pre>{esc(art['preview'])}</pre>"]  # fmt: skip
    if art["encoding"] == "json":
        text = json_text(app.ledger, art)
        body.append(
            "<h2>Value</h2>"
            + (
                f"<pre>{esc(text)}</pre>"
                if text is not None
                else '<p class="muted">Too large to show here; use the Client API.</p>'
            )
        )
    elif load:
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
