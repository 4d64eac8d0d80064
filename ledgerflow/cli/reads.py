"""The indexed reads behind `ledgerflow runs`, `show` and `diff`, as plain dicts.

Every statement starts from an index (flow name, run (flow, created_at) / (flow, run_id),
task (run, step, task_id, attempt), artifact (task, name), tag (run, tag)); the only table
read whole is `flow`, which has one row per flow. No value is ever loaded here except a
run's graph (`run.graph_info`, plain JSON: nothing is unpickled): it
gives the steps in graph order.

The dicts are the `--json` output of those commands; README.md documents their keys.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from ..clock import seconds_between
from ..exceptions import LedgerError, MetaflowNotFound
from ..identify import stored_json
from ..ledger import Ledger
from ..liveness import run_is_dead  # what Run.status uses

_RUN_COLS = ("r.id as pk, r.run_id as run_id, r.status as status, r.created_at as created_at,"
             " r.finished_at as finished_at, r.user as user, r.host as host, r.pid as pid,"
             " r.heartbeat_at as heartbeat_at, r.params as params")  # fmt: skip

# The final attempt of each task: what the Client API shows.
_FINAL_ATTEMPT = ("t.attempt = (select max(m.attempt) from task m where m.run_id = t.run_id"
                  " and m.step = t.step and m.task_id = t.task_id)")  # fmt: skip


def _id_key(task_id: str) -> tuple[int, str]:
    """Numeric order for digit ids ('2' < '10')."""
    return (len(task_id), task_id)


def _rows(ledger: Ledger, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = ledger.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


# -- flows -----------------------------------------------------------------------------


def require_flow(ledger: Ledger, name: str, pathspec: str | None = None) -> None:
    """MetaflowNotFound naming the closest flows when the ledger has no flow `name`: a typo
    must not read as 'no runs'."""
    if ledger.execute("select 1 from flow where name = ?", (name,)).fetchone():
        return
    names = [r[0] for r in ledger.execute("select name from flow order by name")]
    # Case-insensitive closeness, so 'trainflow' suggests 'TrainFlow'.
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[n] for n in difflib.get_close_matches(name.lower(), by_lower, n=3,
                                                             cutoff=0.75)]  # fmt: skip
    hint = f"; did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    there = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") or "none"
    raise MetaflowNotFound(f"{pathspec or name} does not exist in ledger {ledger.path}: there "
                           f"is no flow named {name!r}{hint} (flows there: {there})")  # fmt: skip


# -- runs ------------------------------------------------------------------------------


def displayed_status(row: dict[str, Any]) -> str:
    """The stored status, except that a 'running' run whose process is gone on this host
    is 'crashed' (as Run.status reads it)."""
    if row["status"] == "running" and run_is_dead(row["host"], row["pid"],
                                                   row.get("heartbeat_at")):  # fmt: skip
        return "crashed"
    return str(row["status"])


def recent_runs(
    ledger: Ledger,
    flow: str | None = None,
    status: str | None = None,
    tags: Iterable[str] = (),
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Run records, newest first: of one flow, or of every flow (each flow's newest via the
    (flow, created_at) index, then merged), having every tag in `tags`."""
    if flow is None:
        flows = _rows(ledger, "select id, name from flow")
    else:
        flows = _rows(ledger, "select id, name from flow where name = ?", (flow,))
    found: list[tuple[str, dict[str, Any]]] = []
    for f in flows:
        found += [(f["name"], row) for row in _flow_runs(ledger, f["id"], status, tags, limit)]
    found.sort(key=lambda fr: (fr[1]["created_at"], fr[1]["run_id"]), reverse=True)
    return [run_record(ledger, name, row) for name, row in found[:limit]]


def _flow_runs(ledger: Ledger, flow_pk: int, status: str | None, tags: Iterable[str],
               limit: int) -> list[dict[str, Any]]:  # fmt: skip
    sql = f"select {_RUN_COLS} from run r where r.flow_id = ?"
    params: list[Any] = [flow_pk]
    # 'running' and 'crashed' depend on whether the process is still there, which only
    # Python can tell; there are few such runs, so they are all read and filtered here.
    live = status in ("running", "crashed")
    if live:
        sql += " and r.status in ('running', 'crashed')"
    elif status:
        sql += " and r.status = ?"
        params.append(status)
    for i, tag in enumerate(dict.fromkeys(tags)):
        sql += f" and exists (select 1 from tag g{i} where g{i}.run_id = r.id and g{i}.tag = ?)"
        params.append(tag)
    sql += " order by r.created_at desc, r.run_id desc"
    if not live:
        sql += f" limit {int(limit)}"
    rows = _rows(ledger, sql, params)
    if live:
        rows = [r for r in rows if displayed_status(r) == status][:limit]
    return rows


def run_record(ledger: Ledger, flow: str, row: dict[str, Any]) -> dict[str, Any]:
    """A run as `runs --json` shows it."""
    tags = _rows(ledger, "select tag, system from tag where run_id = ?", (row["pk"],))
    n_tasks = ledger.execute(
        "select count(*) from (select distinct step, task_id from task where run_id = ?)",
        (row["pk"],),
    ).fetchone()[0]
    return {
        "pathspec": f"{flow}/{row['run_id']}",
        "flow": flow,
        "run_id": row["run_id"],
        "status": displayed_status(row),
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "duration_s": seconds_between(row["created_at"], row["finished_at"]),
        "tasks": n_tasks,
        "user": row["user"],
        "tags": sorted(t["tag"] for t in tags if not t["system"]),
        "system_tags": sorted(t["tag"] for t in tags if t["system"]),
        "params": json.loads(row["params"] or "{}"),
    }


def run_row(ledger: Ledger, flow: str, run_id: str) -> dict[str, Any]:
    """The run's table row (with its pk); MetaflowNotFound if there is none."""
    found = _rows(
        ledger,
        f"select {_RUN_COLS} from flow f join run r on r.flow_id = f.id"
        " where f.name = ? and r.run_id = ?",
        (flow, run_id),
    )
    if not found:
        raise MetaflowNotFound(f"{flow}/{run_id} does not exist in ledger {ledger.path}")
    return found[0]


def flows_with_run(ledger: Ledger, run_id: str) -> list[str]:
    """Names of the flows that have a run with this id (run ids are indexed per flow)."""
    return [
        f["name"]
        for f in _rows(ledger, "select id, name from flow order by name")
        if ledger.execute(
            "select 1 from run where flow_id = ? and run_id = ?", (f["id"], run_id)
        ).fetchone()
    ]


# -- steps and tasks -------------------------------------------------------------------


def log_tasks(ledger: Ledger, parts: list[str], attempt: int | None = None) -> list[Any]:
    """Client Tasks for `ledgerflow logs`: the task, or every task of the step or of the run
    (steps in graph order, tasks by id), at `attempt` (default: each task's latest). Their
    .stdout/.stderr read whatever the log table holds, a running task's output too."""
    from ..client import Run, Step, Task
    from .common import all_namespaces

    pathspec = "/".join(parts)
    with all_namespaces():
        if len(parts) == 4:
            return [Task(pathspec, attempt=attempt, ledger=ledger)]
        if len(parts) == 3:
            steps = [Step(pathspec, ledger=ledger)]
        else:
            run = Run(pathspec, ledger=ledger)
            by_name = {s.id: s for s in run}
            row = run_row(ledger, parts[0], parts[1])
            steps = [by_name[name] for name in step_order(ledger, row["pk"]) if name in by_name]
        tasks = [t for step in steps for t in sorted(step, key=lambda t: _id_key(t.id))]
        if attempt is None:
            return tasks
        found = [Task(t.pathspec, attempt=attempt, ledger=ledger)
                 for t in tasks if attempt <= t.current_attempt]  # fmt: skip
    if not found:
        raise MetaflowNotFound(f"no task of {pathspec} has an attempt {attempt}")
    return found


def step_order(ledger: Ledger, run_pk: int) -> list[str]:
    """The run's steps in graph order (from its JSON `_graph_info`), then any others in the
    order they started."""
    started = [
        r["step"]
        for r in _rows(
            ledger,
            "select step, min(started_at) as first from task where run_id = ?"
            " group by step order by first",
            (run_pk,),
        )
    ]
    info = ledger.execute("select graph_info from run where id = ?", (run_pk,)).fetchone()
    graph: list[str] = []
    if info is not None and info[0]:
        graph = list(_steps_of(stored_json(info[0], f"run {run_pk}'s graph_info", {})))
    return [s for s in graph if s in started] + [s for s in started if s not in graph]


def final_tasks(ledger: Ledger, run_pk: int, step: str | None = None,
                task_id: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The final attempt of each task of a run (or of one step, or one task), by step then
    task id."""
    sql = (
        "select t.id as pk, t.step as step, t.task_id as task_id, t.status as status,"
        " t.attempt as attempt, t.foreach_index as foreach_index,"
        " t.foreach_stack as foreach_stack, t.started_at as started_at,"
        " t.finished_at as finished_at, t.exception_type as exception_type,"
        f" t.exception as exception from task t where t.run_id = ? and {_FINAL_ATTEMPT}"
    )
    params: list[Any] = [run_pk]
    if step is not None:
        sql += " and t.step = ?"
        params.append(step)
    if task_id is not None:
        sql += " and t.task_id = ?"
        params.append(task_id)
    rows = _rows(ledger, sql, params)
    rows.sort(key=lambda r: (r["step"], _id_key(r["task_id"])))
    return rows


def step_tasks(ledger: Ledger, run_pk: int, step: str,
               limit: int | None = None) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """The final attempt of the step's first `limit` tasks by task id (every task for None),
    and how many tasks the step has: `show STEP` on a 10,000-task foreach reads one page."""
    sql = (
        "select t.id as pk, t.step as step, t.task_id as task_id, t.status as status,"
        " t.attempt as attempt, t.foreach_index as foreach_index,"
        " t.foreach_stack as foreach_stack, t.started_at as started_at,"
        " t.finished_at as finished_at, t.exception_type as exception_type,"
        " t.exception as exception from task t where t.run_id = ? and t.step = ?"
        f" and {_FINAL_ATTEMPT} order by length(t.task_id), t.task_id"
    )
    params: list[Any] = [run_pk, step]
    if limit is not None:
        sql += " limit ?"
        params.append(limit)
    rows = _rows(ledger, sql, params)
    if limit is None or len(rows) < limit:
        return rows, len(rows)
    total = ledger.execute("select count(distinct task_id) from task where run_id = ? and step = ?",
                           (run_pk, step)).fetchone()[0]  # fmt: skip
    return rows, int(total)


def shown_task_status(stored: str, run_status: str) -> str:
    """A task still 'running' in a crashed run is 'crashed' (as Task.status reads it)."""
    return "crashed" if stored == "running" and run_status == "crashed" else stored


def task_record(run_pathspec: str, row: dict[str, Any], run_status: str) -> dict[str, Any]:
    """A task as `show --json` lists it. A task still 'running' in a crashed run is
    'crashed' (as Task.status reads it)."""
    status = shown_task_status(row["status"], run_status)
    return {
        "pathspec": f"{run_pathspec}/{row['step']}/{row['task_id']}",
        "task_id": row["task_id"],
        "status": status,
        "attempt": row["attempt"],
        "foreach_index": row["foreach_index"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "duration_s": seconds_between(row["started_at"], row["finished_at"]),
        "exception_type": row["exception_type"],
        "exception": row["exception"],
    }


def step_summaries(ledger: Ledger, run: dict[str, Any], run_pk: int) -> list[dict[str, Any]]:
    """Each step of a run in graph order: its number of tasks and how many have each status."""
    by_step: dict[str, dict[str, int]] = {}
    # Counted in SQL: a run with a 10,000-task foreach is not read task by task for this.
    for step, stored, n in ledger.execute(
        f"select t.step, t.status, count(*) from task t where t.run_id = ? and {_FINAL_ATTEMPT}"
        " group by t.step, t.status",
        (run_pk,),
    ):
        status = shown_task_status(stored, run["status"])
        counts = by_step.setdefault(step, {})
        counts[status] = counts.get(status, 0) + n
    return [
        {
            "step": step,
            "pathspec": f"{run['pathspec']}/{step}",
            "tasks": sum(by_step[step].values()),
            "statuses": dict(sorted(by_step[step].items())),
        }
        for step in step_order(ledger, run_pk)
        if step in by_step
    ]


# -- artifacts -------------------------------------------------------------------------

_ARTIFACT_COLS = "name, type, size, encoding, sha, preview, inherited, created_at"


def artifact_records(ledger: Ledger, flow: str, run_id: str, step: str, task_id: str,
                     attempt: int, private: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """The artifacts a task attempt holds (what task.data shows), by name, with the stored
    type, size and preview: nothing is loaded."""
    rows = _rows(
        ledger,
        f"select {_ARTIFACT_COLS} from all_artifacts where flow = ? and run_id = ?"
        " and step = ? and task_id = ? and attempt = ? order by name",
        (flow, run_id, step, task_id, attempt),
    )
    return [_artifact(r) for r in rows if private or not r["name"].startswith("_")]


def artifact_record(ledger: Ledger, flow: str, run_id: str, step: str, task_id: str,
                    attempt: int, name: str) -> dict[str, Any]:  # fmt: skip
    """One artifact of a task attempt, as `show --json` shows it."""
    rows = _rows(
        ledger,
        f"select {_ARTIFACT_COLS} from all_artifacts where flow = ? and run_id = ?"
        " and step = ? and task_id = ? and attempt = ? and name = ?",
        (flow, run_id, step, task_id, attempt, name),
    )
    if not rows:
        raise MetaflowNotFound(
            f"{flow}/{run_id}/{step}/{task_id}/{name} does not exist in ledger {ledger.path}"
        )
    return {**_artifact(rows[0]), "created_at": rows[0]["created_at"]}


def _artifact(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "type": row["type"],
        "size": row["size"],
        "encoding": row["encoding"],
        "sha": row["sha"],
        "preview": row["preview"],
        "inherited": bool(row["inherited"]),
    }


def task_shas(ledger: Ledger, run_pk: int) -> dict[int, dict[str, tuple[str, bool, int, str]]]:
    """For every task attempt of a run: artifact name -> (SHA, inherited, size, encoding).
    Public ones only."""
    out: dict[int, dict[str, tuple[str, bool, int, str]]] = {}
    for task_pk, name, sha, inherited, size, encoding in ledger.execute(
        "select t.id, a.name, a.sha, a.inherited, a.size, a.encoding from task t"
        " join artifact a on a.task_id = t.id where t.run_id = ?",
        (run_pk,),
    ):
        if not name.startswith("_"):
            out.setdefault(task_pk, {})[name] = (sha, bool(inherited), size, encoding)
    return out


def foreach_path(row: dict[str, Any]) -> tuple[int, ...]:
    """The task's index in each enclosing foreach, outermost first (() outside any)."""
    stack = stored_json(row["foreach_stack"], "a task's foreach_stack", [])
    try:
        return tuple(int(frame[3]) for frame in stack)
    except (TypeError, ValueError, IndexError, KeyError):
        raise LedgerError(
            "a task's foreach_stack in the ledger is malformed; the file is "
            "damaged: run `ledgerflow doctor`"
        ) from None


def _steps_of(graph: Any) -> list[str]:
    steps = graph.get("steps", {}) if isinstance(graph, dict) else {}
    return list(steps) if isinstance(steps, dict) else []
