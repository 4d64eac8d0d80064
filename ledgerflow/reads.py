"""The read queries of the ledger: every lookup the Client API, the `ledgerflow` commands and
`ledgerflow ui` make, each a few lines, each returning plain dicts (column name -> value).

Every statement starts from an index: flow (name), run (flow_id, run_id) / (flow_id,
created_at) / (created_at), task (run_id, step, task_id, attempt), artifact (task_id, name),
tag (run_id, tag) / (tag), log (task_id, stream), task_parent (parent_id). The only table
read whole is `flow`, which has one row per flow; the UI's page of every run walks the
run(created_at) index newest first and stops at its limit. tests/test_reads.py checks each
statement's query plan. Nothing here decodes a value: previews, the plain `value` column and
a run's JSON graph only.

Writes are not here: `ledger.py` (runs, tasks, logs), `blobstore.py`, `search_index.py`,
`upkeep.py` and `sharing.py` own them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import logstore
from .exceptions import MetaflowNotFound
from .ledger import Ledger
from .liveness import run_is_dead
from .tables import TASK

# Called with (sql, params) before each statement runs, so a test can see (and
# `EXPLAIN QUERY PLAN`) every read; None to switch off.
trace: Callable[[str, tuple[Any, ...]], None] | None = None


def cursor(ledger: Ledger, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
    """The statement run, for reading its rows as tuples (where there are many)."""
    params = tuple(params)
    if trace is not None:
        trace(sql, params)
    return ledger.execute(sql, params)


def rows(ledger: Ledger, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """All result rows as dicts keyed by column name."""
    cur = cursor(ledger, sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]  # a row has a value a column


def one(ledger: Ledger, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
    """The first result row, or None."""
    found = rows(ledger, sql, params)
    return found[0] if found else None


def id_key(task_id: str) -> tuple[int, str]:
    """Numeric order for digit ids ('2' < '10')."""
    return (len(task_id), task_id)


# What a listing of runs shows (`r` is the run; each column costs, on thousands of rows) ...
_RUN_LISTED = (
    "r.id as pk, r.run_id as run_id, r.status as status, r.created_at as created_at,"
    " r.finished_at as finished_at, r.user as user, r.host as host, r.pid as pid,"
    " r.heartbeat_at as heartbeat_at, r.params as params"
)
# ... and what a Client API Run holds besides: every run lookup returns these (with `flow`).
_RUN_HELD = (
    f"{_RUN_LISTED}, r.origin_run_id as origin_run_id, r.machine_id as machine_id,"
    " r.script_name as script_name, r.python_version as python_version,"
    " r.ledgerflow_version as ledgerflow_version"
)
_RUN_COLUMNS = f"f.name as flow, {_RUN_HELD}"  # `f` is the run's flow
# A run's tags as JSON [[tag, system], ...]: one indexed range of `tag` per run.
_TAGS = (
    "(select json_group_array(json_array(g.tag, g.system)) from tag g where g.run_id = r.id)"
    " as tags"
)
# The columns every task lookup returns (`t` is the task attempt): the declared ones (tables.py)
# but the run pk and the traceback (read on its own, task_traceback).
_TASK_COLUMNS = ", ".join(
    ["t.id as pk"] + [f"t.{c.name} as {c.name}" for c in TASK.columns
                      if c.name not in ("id", "run_id") and c.listed]
)  # fmt: skip
# When the task's first attempt started: when the Client API says it was created.
_TASK_CREATED = (
    "(select min(t0.started_at) from task t0 where t0.run_id = t.run_id and t0.step = t.step"
    " and t0.task_id = t.task_id) as created_at"
)
# The final attempt of each task: what the Client API, `show` and the UI show.
_FINAL_ATTEMPT = (
    "t.attempt = (select max(m.attempt) from task m where m.run_id = t.run_id"
    " and m.step = t.step and m.task_id = t.task_id)"
)
_ARTIFACT_COLUMNS = (
    "a.name as name, a.sha as sha, a.encoding as encoding, a.type as type, a.size as size,"
    " a.inherited as inherited"
)
# With the stored preview and plain value (what the UI shows without loading anything).
_ARTIFACT_BLOB_COLUMNS = (
    f"{_ARTIFACT_COLUMNS}, a.value as value, b.preview as preview,"
    " b.python_version as python_version, b.n_chunks as n_chunks"
)


# -- flows ----------------------------------------------------------------------------------


def flow(ledger: Ledger, name: str) -> dict[str, Any] | None:
    """The flow's row (id, name, created_at), or None."""
    return one(ledger, "select id, name, created_at from flow where name = ?", (name,))


def flows(ledger: Ledger, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every flow (id, name, created_at) by name; with a namespace, those having a run
    tagged with it."""
    sql = "select id, name, created_at from flow"  # the one table read whole: one row a flow
    params: tuple[Any, ...] = ()
    if namespace is not None:
        sql += (
            " where exists (select 1 from tag g join run r on r.id = g.run_id"
            " where g.tag = ? and r.flow_id = flow.id)"
        )
        params = (namespace,)
    return rows(ledger, sql + " order by name", params)


def flow_names(ledger: Ledger, limit: int | None = None) -> list[str]:
    """Flow names in order (the first `limit`)."""
    sql = "select name from flow order by name" + (f" limit {int(limit)}" if limit else "")
    return [r["name"] for r in rows(ledger, sql)]


def flow_has_tag(ledger: Ledger, flow_pk: int, tag: str) -> bool:
    """True if a run of the flow has this tag (a namespace is a tag)."""
    return bool(one(ledger, "select 1 as found from tag g join run r on r.id = g.run_id"
                            " where g.tag = ? and r.flow_id = ? limit 1", (tag, flow_pk)))  # fmt: skip


def require_flow(ledger: Ledger, name: str, pathspec: str | None = None) -> None:
    """MetaflowNotFound naming the closest flows when the ledger has no flow `name`: a typo
    must not read as 'no runs'."""
    if flow(ledger, name) is not None:
        return
    import difflib  # only to explain a miss

    names = flow_names(ledger)
    # Case-insensitive closeness, so 'trainflow' suggests 'TrainFlow'.
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[n] for n in difflib.get_close_matches(name.lower(), by_lower, n=3,
                                                             cutoff=0.75)]  # fmt: skip
    hint = f"; did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    there = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") or "none"
    raise MetaflowNotFound(f"{pathspec or name} does not exist in ledger {ledger.path}: there "
                           f"is no flow named {name!r}{hint} (flows there: {there})")  # fmt: skip


# -- runs -----------------------------------------------------------------------------------


def shown_run_status(row: dict[str, Any]) -> str:
    """The stored status, except that a 'running' run whose process is gone is 'crashed'
    (the ledger is not changed)."""
    if row["status"] == "running" and run_is_dead(row["host"], row["pid"],
                                                   row.get("heartbeat_at")):  # fmt: skip
        return "crashed"
    return str(row["status"])


def shown_task_status(stored: str, run_status: str) -> str:
    """A task still 'running' in a crashed run is 'crashed' (Task.status, `show`, the UI)."""
    return "crashed" if stored == "running" and run_status == "crashed" else stored


def tag_pairs(row: dict[str, Any]) -> list[Any]:
    """A run row's tags as [tag, system] pairs (system: 1 or 0)."""
    return json.loads(row["tags"] or "[]")  # type: ignore[no-any-return]


def run_tags(ledger: Ledger, run_pk: int) -> list[tuple[str, int]]:
    """The run's tags as (tag, system) pairs (system: 1 or 0)."""
    return cursor(ledger, "select tag, system from tag where run_id = ?", (run_pk,)).fetchall()


def find_run(ledger: Ledger, flow_name: str, run_id: str,
             graph: bool = False) -> dict[str, Any] | None:  # fmt: skip
    """The run's row (the columns a Client API Run holds, its tags, and its JSON graph_info
    if `graph`), or None."""
    return one(ledger, _FIND_RUN_GRAPH if graph else _FIND_RUN, (flow_name, run_id))


_FIND_RUN = (f"select {_RUN_COLUMNS}, {_TAGS} from flow f join run r on r.flow_id = f.id"
             " where f.name = ? and r.run_id = ?")  # fmt: skip
_FIND_RUN_GRAPH = _FIND_RUN.replace(" from flow f", ", r.graph_info as graph_info from flow f", 1)


def run_row(ledger: Ledger, flow_name: str, run_id: str) -> dict[str, Any]:
    """The run's row; MetaflowNotFound if there is none."""
    found = find_run(ledger, flow_name, run_id)
    if found is None:
        raise _no_run(ledger, flow_name, run_id)
    return found


def run_pk(ledger: Ledger, flow_name: str, run_id: str) -> int:
    """The run's primary key (all a diff needs); MetaflowNotFound if there is none."""
    found = one(ledger, "select r.id as pk from flow f join run r on r.flow_id = f.id"
                        " where f.name = ? and r.run_id = ?", (flow_name, run_id))  # fmt: skip
    if found is None:
        raise _no_run(ledger, flow_name, run_id)
    return int(found["pk"])


def _no_run(ledger: Ledger, flow_name: str, run_id: str) -> MetaflowNotFound:
    return MetaflowNotFound(f"{flow_name}/{run_id} does not exist in ledger {ledger.path}")


def has_run(ledger: Ledger, flow_pk: int, run_id: str) -> bool:
    return bool(one(ledger, "select 1 as found from run where flow_id = ? and run_id = ?",
                    (flow_pk, run_id)))  # fmt: skip


def flows_with_run(ledger: Ledger, run_id: str) -> list[str]:
    """Names of the flows that have a run with this id (run ids are indexed per flow)."""
    return [f["name"] for f in flows(ledger) if has_run(ledger, f["id"], run_id)]


def flow_runs(ledger: Ledger, flow_row: dict[str, Any], *, tags: Iterable[str] = (),
              status: str | None = None, successful: bool = False, limit: int | None = None,
              listing: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """A flow's runs (`flow_row`: its id and name) newest first (what a Run holds and tags, or
    for a `listing` only the columns it shows), having every tag in `tags`, with the shown
    `status`, or whose end step succeeded: one range of (flow_id, created_at)."""
    columns = _RUN_LISTED if listing else f"{_RUN_HELD}, {_TAGS}"
    sql = f"select ? as flow, {columns} from run r where r.flow_id = ?"
    params: list[Any] = [flow_row["name"], flow_row["id"]]
    # 'running' and 'crashed' depend on whether the process is still there, which only
    # Python can tell; there are few such runs, so they are all read and filtered here.
    live = status in ("running", "crashed")
    if live:
        sql += " and r.status in ('running', 'crashed')"
    elif status:
        sql += " and r.status = ?"
        params.append(status)
    for i, tag in enumerate(dict.fromkeys(tags)):
        sql += f" and exists (select 1 from tag w{i} where w{i}.run_id = r.id and w{i}.tag = ?)"
        params.append(tag)
    if successful:
        sql += (" and exists (select 1 from task e where e.run_id = r.id and e.step = 'end'"
                " and e.status = 'succeeded')")  # fmt: skip
    sql += " order by r.created_at desc, r.run_id desc"
    if limit is not None and not live:
        sql += f" limit {int(limit)}"
    found = rows(ledger, sql, params)
    if live:
        found = [r for r in found if shown_run_status(r) == status][:limit]
    return found


def runs_page(ledger: Ledger, *, flow_name: str | None = None, status: str | None = None,
              tag: str | None = None, before: tuple[str, int] | None = None,
              limit: int = 50) -> list[dict[str, Any]]:  # fmt: skip
    """Runs of every flow (or one) newest first, with their number of task attempts,
    starting after the (created_at, pk) `before` (keyset paging: one index range however
    deep). `status` 'running' or 'crashed' returns both; the caller tells them apart."""
    where: list[str] = []
    params: list[Any] = []
    if flow_name:
        where.append("r.flow_id = (select id from flow where name = ?)")
        params.append(flow_name)
    if status in ("running", "crashed"):
        where.append("r.status in ('running', 'crashed')")
    elif status:
        where.append("r.status = ?")
        params.append(status)
    if tag:
        where.append("exists (select 1 from tag t where t.run_id = r.id and t.tag = ?)")
        params.append(tag)
    if before is not None:
        # A row value, not `a < ? or (a = ? and id < ?)`: SQLite reads it as one index
        # range (measured on 100k runs: 0.14 ms a page, against 7 ms for the `or`).
        where.append("(r.created_at, r.id) < (?, ?)")
        params += list(before)
    return rows(ledger, f"select f.name as flow, {_RUN_LISTED}, (select count(*) from task t where"
                        " t.run_id = r.id) as tasks from run r join flow f on f.id = r.flow_id "
                        + (f"where {' and '.join(where)} " if where else "")
                        + "order by r.created_at desc, r.id desc limit ?",
                [*params, limit])  # fmt: skip


def run_graph_info(ledger: Ledger, run_pk: int) -> str | None:
    """The run's graph as stored (JSON text), or None."""
    row = one(ledger, "select graph_info from run where id = ?", (run_pk,))
    return row["graph_info"] if row else None


def run_code(ledger: Ledger, run_pk: int) -> dict[str, Any] | None:
    """The flow file's source as the run stored it (code, script_name), or None."""
    return one(ledger, "select code, script_name from run where id = ?", (run_pk,))


def run_progress(ledger: Ledger, run_pk: int) -> tuple[Any, ...] | None:
    """(status, task attempts, newest task attempt's id): changes whenever the run does."""
    row = one(ledger, "select r.status as status, (select count(*) from task where run_id = r.id)"
                      " as n, (select max(id) from task where run_id = r.id) as newest from run r"
                      " where r.id = ?", (run_pk,))  # fmt: skip
    return (row["status"], row["n"], row["newest"]) if row else None


# -- steps ----------------------------------------------------------------------------------


def step_starts(ledger: Ledger, run_pk: int) -> list[dict[str, Any]]:
    """The run's steps (step, created_at: when its first task started), in that order."""
    return rows(ledger, "select step, min(started_at) as created_at from task where run_id = ?"
                        " group by step order by created_at", (run_pk,))  # fmt: skip


def step_names(ledger: Ledger, run_pk: int) -> list[str]:
    """The run's step names, sorted."""
    found = rows(ledger, "select distinct step from task where run_id = ?", (run_pk,))
    return sorted(r["step"] for r in found)


def step_row(ledger: Ledger, run_pk: int, step: str) -> dict[str, Any] | None:
    """When the step's first task started (created_at), or None if the run has no such step."""
    row = one(ledger, "select min(started_at) as created_at, count(*) as n from task"
                      " where run_id = ? and step = ?", (run_pk, step))  # fmt: skip
    return row if row is not None and row["n"] else None


def has_step(ledger: Ledger, run_pk: int, step: str) -> bool:
    return bool(one(ledger, "select 1 as found from task where run_id = ? and step = ? limit 1",
                    (run_pk, step)))  # fmt: skip


def step_order(ledger: Ledger, run_pk: int) -> list[str]:
    """The run's steps in graph order (from its JSON `_graph_info`), then any others in the
    order they started."""
    from .identify import stored_json

    started = [r["step"] for r in step_starts(ledger, run_pk)]
    info = run_graph_info(ledger, run_pk)
    graph: list[str] = []
    if info:
        graph = _steps_of(stored_json(info, f"run {run_pk}'s graph_info", {}))
    return [s for s in graph if s in started] + [s for s in started if s not in graph]


def _steps_of(graph: Any) -> list[str]:
    steps = graph.get("steps", {}) if isinstance(graph, dict) else {}
    return list(steps) if isinstance(steps, dict) else []


def step_status_counts(ledger: Ledger, run_pk: int) -> list[tuple[str, str, int]]:
    """(step, stored status, tasks) over each task's final attempt. Counted in SQL: a run
    with a 10,000-task foreach is not read task by task for this."""
    return [(r["step"], r["status"], r["n"]) for r in rows(
        ledger, f"select t.step as step, t.status as status, count(*) as n from task t"
                f" where t.run_id = ? and {_FINAL_ATTEMPT} group by t.step, t.status",
        (run_pk,))]  # fmt: skip


def step_finish(ledger: Ledger, run_pk: int, step: str) -> dict[str, Any] | None:
    """Over each task's final attempt: how many (n), how many finished (done), and the last
    finish time (last)."""
    return one(ledger, "select count(*) as n, count(t.finished_at) as done,"
                       " max(t.finished_at) as last from task t where t.run_id = ?"
                       f" and t.step = ? and {_FINAL_ATTEMPT}", (run_pk, step))  # fmt: skip


# -- tasks ----------------------------------------------------------------------------------


def task_count(ledger: Ledger, run_pk: int) -> int:
    """How many tasks the run has (attempts of one task count once)."""
    return int(cursor(ledger, "select count(*) from (select distinct step, task_id from task"
                              " where run_id = ?)", (run_pk,)).fetchone()[0])  # fmt: skip


def final_tasks(ledger: Ledger, run_pk: int, step: str | None = None,
                task_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The final attempt of each task of a run (or of one step, or one task); with a
    `limit`, the first that many in start order (without one, in no set order: the callers
    sort as they show)."""
    sql = f"select {_TASK_COLUMNS} from task t where t.run_id = ? and {_FINAL_ATTEMPT}"
    params: list[Any] = [run_pk]
    if step is not None:
        sql += " and t.step = ?"
        params.append(step)
    if task_id is not None:
        sql += " and t.task_id = ?"
        params.append(task_id)
    if limit is not None:
        sql += " order by t.started_at, t.id limit ?"
        params.append(limit)
    return rows(ledger, sql, params)


def step_tasks(ledger: Ledger, run_pk: int, step: str,
               limit: int | None = None) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """The final attempt of the step's first `limit` tasks by task id (every task for None),
    and how many tasks the step has: `show STEP` on a 10,000-task foreach reads one page."""
    sql = (f"select {_TASK_COLUMNS} from task t where t.run_id = ? and t.step = ?"
           f" and {_FINAL_ATTEMPT} order by length(t.task_id), t.task_id")  # fmt: skip
    params: list[Any] = [run_pk, step]
    if limit is not None:
        sql += " limit ?"
        params.append(limit)
    found = rows(ledger, sql, params)
    if limit is None or len(found) < limit:
        return found, len(found)
    total = one(ledger, "select count(distinct task_id) as n from task where run_id = ?"
                        " and step = ?", (run_pk, step))  # fmt: skip
    return found, int(total["n"]) if total else 0


# Iterating a step reads its tasks a page at a time, newest first. Order: when the task's
# first attempt started, then task id (numerically), both descending; each task is its
# final attempt. The order key is unique, so a page starts exactly after the last task of
# the one before (keyset paging: no OFFSET rescans).
_PAGE_SQL = (
    f"select {_TASK_COLUMNS}, {_TASK_CREATED} from task t where t.run_id = ? and t.step = ?"
    f" and {_FINAL_ATTEMPT} {{after}} order by created_at desc, length(t.task_id) desc,"
    " t.task_id desc limit ?"
)
_AFTER = "and (created_at, length(t.task_id), t.task_id) < (?, ?, ?)"


def step_tasks_page(ledger: Ledger, run_pk: int, step: str, size: int,
                    after: tuple[str, int, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One page of the step's tasks, newest first, after the (created_at, len(task_id),
    task_id) of the last task of the page before."""
    if after is None:
        return rows(ledger, _PAGE_SQL.format(after=""), (run_pk, step, size))
    return rows(ledger, _PAGE_SQL.format(after=_AFTER), (run_pk, step, *after, size))


def find_task(ledger: Ledger, run_pk: int, step: str, task_id: str,
              attempt: int | None = None) -> dict[str, Any] | None:  # fmt: skip
    """The task at `attempt` (default: its final one), with created_at, or None."""
    if attempt is None:
        return one(ledger, _FIND_TASK + " order by t.attempt desc limit 1", (run_pk, step, task_id))
    return one(ledger, _FIND_TASK + " and t.attempt = ?", (run_pk, step, task_id, attempt))


_FIND_TASK = (f"select {_TASK_COLUMNS}, {_TASK_CREATED} from task t"
              " where t.run_id = ? and t.step = ? and t.task_id = ?")  # fmt: skip


def task_attempts(ledger: Ledger, run_pk: int, step: str, task_id: str) -> list[dict[str, Any]]:
    """Every attempt of a task (with its traceback), first to last."""
    return rows(ledger, f"select {_TASK_COLUMNS}, t.traceback as traceback from task t"
                        " where t.run_id = ? and t.step = ? and t.task_id = ? order by t.attempt",
                (run_pk, step, task_id))  # fmt: skip


def task_ids(ledger: Ledger, run_pk: int, step: str) -> list[str]:
    """The step's task ids, in numeric order."""
    found = rows(ledger, "select task_id from task where run_id = ? and step = ?", (run_pk, step))
    return sorted({r["task_id"] for r in found}, key=id_key)


def has_task(ledger: Ledger, run_pk: int, step: str, task_id: str) -> bool:
    return bool(one(ledger, "select 1 as found from task where run_id = ? and step = ?"
                            " and task_id = ? limit 1", (run_pk, step, task_id)))  # fmt: skip


def task_traceback(ledger: Ledger, task_pk: int) -> str | None:
    row = one(ledger, "select traceback from task where id = ?", (task_pk,))
    return row["traceback"] if row else None


def task_and_run_state(ledger: Ledger, task_pk: int) -> dict[str, Any] | None:
    """A task attempt's finished_at with its run's status and liveness columns, or None."""
    return one(ledger, "select t.finished_at as finished_at, r.status as status, r.host as host,"
                       " r.pid as pid, r.heartbeat_at as heartbeat_at from task t"
                       " join run r on r.id = t.run_id where t.id = ?", (task_pk,))  # fmt: skip


def related_tasks(ledger: Ledger, run_pk: int, step: str, task_id: str,
                  parents: bool) -> list[tuple[str, str]]:  # fmt: skip
    """(step, task_id) of the tasks any attempt of this task started from (parents) or that
    started from it, by step then task id."""
    mine, theirs = ("task_id", "parent_id") if parents else ("parent_id", "task_id")
    found = rows(ledger, f"select distinct o.step as step, o.task_id as task_id from task_parent"
                         f" tp join task o on o.id = tp.{theirs} where tp.{mine} in (select id"
                         " from task where run_id = ? and step = ? and task_id = ?)",
                 (run_pk, step, task_id))  # fmt: skip
    return sorted({(r["step"], r["task_id"]) for r in found}, key=lambda st: (st[0], id_key(st[1])))


# -- logs -----------------------------------------------------------------------------------


def log_text(ledger: Ledger, task_pk: int, stream: str) -> str | None:
    """What the task attempt printed to `stream` (so far), or None."""
    return logstore.read_text(ledger.conn, task_pk, stream)  # compressed pieces


def log_size(ledger: Ledger, task_pk: int, stream: str) -> int:
    """Bytes of `stream` (UTF-8), without reading the text into Python."""
    return logstore.total_bytes(ledger.conn, task_pk, stream)


def logs(ledger: Ledger, task_pk: int) -> dict[str, str]:
    """Both streams of a task attempt ('' for one it never printed to)."""
    return logstore.read_both(ledger.conn, task_pk)


# -- artifacts ------------------------------------------------------------------------------


def task_artifacts(ledger: Ledger, task_pk: int, *, public: bool = False,
                   blob: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """A task attempt's artifacts by name (only those not starting with '_' if `public`),
    with the stored value and preview if `blob`."""
    if blob:
        sql = (f"select {_ARTIFACT_BLOB_COLUMNS} from artifact a join blob b on b.sha = a.sha"
               " where a.task_id = ?")  # fmt: skip
    else:
        sql = f"select {_ARTIFACT_COLUMNS} from artifact a where a.task_id = ?"
    if public:
        sql += " and substr(a.name, 1, 1) != '_'"
    return rows(ledger, sql + " order by a.name", (task_pk,))


def tasks_by_pk(ledger: Ledger, task_pks: list[int]) -> list[tuple[int, str, str]]:
    """(pk, step, foreach_stack JSON) of the given task attempts: a join's inputs."""
    return cursor(ledger, "select t.id, t.step, t.foreach_stack from task t"
                          " where t.id in (select value from json_each(?))",
                  (json.dumps(task_pks),)).fetchall()  # fmt: skip


def artifacts_of_tasks(ledger: Ledger, task_pks: list[int]) -> Iterator[tuple[Any, ...]]:
    """(task pk, name, sha, encoding, type, size, value, preview, inherited) of every
    artifact of the given task attempts, as tuples, row by row: a join may have 10,000
    inputs, and its reader keeps what it needs of each row."""
    return iter(cursor(ledger, "select a.task_id, a.name, a.sha, a.encoding, a.type, a.size,"
                               " a.value, b.preview, a.inherited from artifact a"
                               " join blob b on b.sha = a.sha"
                               " where a.task_id in (select value from json_each(?))",
                       (json.dumps(task_pks),)))  # fmt: skip


def find_artifact(ledger: Ledger, task_pk: int, name: str,
                  blob: bool = False) -> dict[str, Any] | None:  # fmt: skip
    """One artifact of a task attempt (with its blob's preview and facts if `blob`), or None."""
    if blob:
        sql = (f"select {_ARTIFACT_BLOB_COLUMNS} from artifact a join blob b on b.sha = a.sha"
               " where a.task_id = ? and a.name = ?")  # fmt: skip
    else:
        sql = f"select {_ARTIFACT_COLUMNS} from artifact a where a.task_id = ? and a.name = ?"
    return one(ledger, sql, (task_pk, name))


def has_artifact(ledger: Ledger, task_pk: int, name: str) -> bool:
    return bool(one(ledger, "select 1 as found from artifact where task_id = ? and name = ?",
                    (task_pk, name)))  # fmt: skip


def attempt_artifacts(ledger: Ledger, flow_name: str, run_id: str, step: str, task_id: str,
                      attempt: int, name: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The artifacts of a task attempt named by its pathspec (one, given `name`), by name,
    with the stored type, size and preview (the `all_artifacts` view)."""
    sql = ("select name, type, size, encoding, sha, preview, inherited, created_at"
           " from all_artifacts where flow = ? and run_id = ? and step = ? and task_id = ?"
           " and attempt = ?")  # fmt: skip
    params: list[Any] = [flow_name, run_id, step, task_id, attempt]
    if name is not None:
        sql += " and name = ?"
        params.append(name)
    return rows(ledger, sql + " order by name", params)


def run_artifact_shas(ledger: Ledger,
                      run_pk: int) -> dict[int, dict[str, tuple[str, bool, int, str]]]:  # fmt: skip
    """For every task attempt of a run: artifact name -> (SHA, inherited, size, encoding).
    Public ones only."""
    out: dict[int, dict[str, tuple[str, bool, int, str]]] = {}
    for task_pk, name, sha, inherited, size, encoding in cursor(
        ledger,
        "select t.id, a.name, a.sha, a.inherited, a.size, a.encoding from task t"
        " join artifact a on a.task_id = t.id where t.run_id = ?",
        (run_pk,),
    ):
        if not name.startswith("_"):
            out.setdefault(task_pk, {})[name] = (sha, bool(inherited), size, encoding)
    return out


def run_has_pickles(ledger: Ledger, run_pk: int) -> bool:
    """True if any artifact of the run is stored as a pickle (loading it runs code)."""
    return bool(one(ledger, "select 1 as found from task t join artifact a on a.task_id = t.id"
                            " join blob b on b.sha = a.sha where t.run_id = ?"
                            " and b.encoding != 'json' limit 1", (run_pk,)))  # fmt: skip


def blob_preview(ledger: Ledger, sha: str) -> str | None:
    """The stored text preview of a value (never its bytes)."""
    row = one(ledger, "select preview from blob where sha = ?", (sha,))
    return row["preview"] if row else None


# -- cards, S3 objects, imported runs ----------------------------------------------------------


def has_card_table(ledger: Ledger) -> bool:
    """Ledgers from before cards (migration 2) have no `card` table."""
    return one(ledger, "select 1 as found from sqlite_master where type = 'table'"
                       " and name = 'card'") is not None  # fmt: skip


def card_rows(ledger: Ledger, task_pks: list[int]) -> list[dict[str, Any]]:
    """The cards of some task attempts, in the order they were declared."""
    if not task_pks or not has_card_table(ledger):
        return []
    marks = ",".join("?" * len(task_pks))
    return rows(ledger, "select id, task_id, seq, type, card_id, sha, error from card "
                        f"where task_id in ({marks}) order by task_id, seq", task_pks)  # fmt: skip


def card(ledger: Ledger, card_pk: int) -> dict[str, Any] | None:
    """One card's row, by its id."""
    if not has_card_table(ledger):
        return None
    return one(ledger, "select id, task_id, seq, type, card_id, sha, error from card"
                       " where id = ?", (card_pk,))  # fmt: skip


def s3_object(ledger: Ledger, run_pk: int, key: str) -> dict[str, Any] | None:
    """The object stored under `key` by `S3(run=...)` in a run: its sha, encoding, size."""
    return one(ledger, "select sha, encoding, size from s3_object where run_id = ? and key = ?",
               (run_pk, key))  # fmt: skip


def s3_keys(ledger: Ledger, run_pk: int) -> list[tuple[str, int]]:
    """(key, size) of a run's S3 objects, by key."""
    return cursor(ledger, "select key, size from s3_object where run_id = ? order by key",
                  (run_pk,)).fetchall()  # fmt: skip


def run_pks(ledger: Ledger) -> list[int]:
    """Every run's pk, in order: the runs `ledgerflow trust FILE` fingerprints."""
    return [pk for (pk,) in cursor(ledger, "select id from run order by id")]


def run_pathspecs(ledger: Ledger, run_pks: list[int]) -> list[tuple[int, str, str]]:
    """(pk, flow name, run id) of the given runs."""
    return cursor(ledger, "select r.id, f.name, r.run_id from run r join flow f on f.id ="
                          " r.flow_id where r.id in (select value from json_each(?))",
                  (json.dumps(run_pks),)).fetchall()  # fmt: skip


def run_blob_refs(ledger: Ledger, run_pks: list[int]) -> list[tuple[int, str, str | None]]:
    """(run pk, sha, the blob's encoding) of every blob the given runs reference: their
    artifacts' and their S3 objects'. A run's fingerprint is made of these (trust_store.py)."""
    pks = json.dumps(run_pks)
    return cursor(ledger, "select t.run_id, a.sha, b.encoding from artifact a join task t on"
                          " t.id = a.task_id left join blob b on b.sha = a.sha where t.run_id in"
                          " (select value from json_each(?)) union select o.run_id, o.sha,"
                          " b.encoding from s3_object o left join blob b on b.sha = o.sha where"
                          " o.run_id in (select value from json_each(?))",
                  (pks, pks)).fetchall()  # fmt: skip


def imported_run(ledger: Ledger, run_pk: int) -> dict[str, Any] | None:
    """For a run `import`/`export` copied in: its source ledger id, whether it is trusted
    (there, or since by `trust --source`) and when it came; None for a run made here.
    sqlite3.Error where the file has no `imported_run` table."""
    return one(ledger, "select coalesce(source_ledger_id, '') as source, trusted,"
                       " coalesce(imported_at, '') as imported_at from imported_run"
                       " where run_id = ?", (run_pk,))  # fmt: skip


# -- run --reuse (taskreuse.py) ---------------------------------------------------------------------


def reusable_tasks(ledger: Ledger, key: str, limit: int = 20) -> list[dict[str, Any]]:
    """Successful tasks made under a reuse key, newest first, with their run and flow."""
    return rows(ledger, "select t.id as pk, t.run_id as run_pk, r.run_id as run_id,"
                        " f.name as flow, t.step as step, t.task_id as task_id"
                        " from task_key k join task t on t.id = k.task_pk"
                        " join run r on r.id = t.run_id join flow f on f.id = r.flow_id"
                        " where k.key = ? and t.status = 'succeeded'"
                        " order by t.id desc limit ?", (key, limit))  # fmt: skip


def task_for_clone(ledger: Ledger, task_pk: int) -> dict[str, Any] | None:
    """A task row as `resume` and `--reuse` clone it."""
    return one(ledger, f"select {_TASK_COLUMNS} from task t where t.id = ?", (task_pk,))


def task_key(ledger: Ledger, task_pk: int) -> dict[str, Any] | None:
    """A task's reuse key and its parts' digests, if it has one."""
    return one(ledger, "select key, code, inputs, env from task_key where task_pk = ?",
               (task_pk,))  # fmt: skip


def step_code(ledger: Ledger, run_pk: int, step: str) -> dict[str, Any] | None:
    """A step's code fingerprint in a run and its parts (JSON)."""
    return one(ledger, "select code, parts from step_code where run_pk = ? and step = ?",
               (run_pk, step))  # fmt: skip


def earlier_keyed_tasks(ledger: Ledger, flow_pk: int, step: str, before_pk: int,
                        limit: int = 200) -> list[dict[str, Any]]:  # fmt: skip
    """The latest successful tasks of a flow's step before a given task that have a reuse
    key, newest first: what `ledgerflow explain` compares a task with."""
    return rows(ledger, "select t.id as pk, t.run_id as run_pk, r.run_id as run_id,"
                        " t.task_id as task_id, t.foreach_stack as foreach_stack,"
                        " k.code as code, k.inputs as inputs"
                        " from task t join task_key k on k.task_pk = t.id"
                        " join run r on r.id = t.run_id"
                        " where r.flow_id = ? and t.step = ? and t.id < ?"
                        " and t.status = 'succeeded' order by t.id desc limit ?",
                (flow_pk, step, before_pk, limit))  # fmt: skip


def parent_artifact_shas(ledger: Ledger, task_pk: int) -> list[tuple[int, str, str]]:
    """(parent task pk, artifact name, sha) of every artifact of a task's parents."""
    return [tuple(r) for r in cursor(ledger, "select p.parent_id, a.name, a.sha"
                                             " from task_parent p join artifact a"
                                             " on a.task_id = p.parent_id"
                                             " where p.task_id = ? order by p.parent_id",
                                     (task_pk,))]  # fmt: skip


# -- the UI's and notebook views' reads (appended by the UI engineer) ------------------------

# Seconds a task took, from its stored ISO times (NULL while running or when unparseable).
_TASK_SECONDS = "(julianday(t.finished_at) - julianday(t.started_at)) * 86400.0"


def run_has_retries(ledger: Ledger, run_pk: int) -> bool:
    """True if any task of the run ran more than once (else every row is a final attempt)."""
    return bool(one(ledger, "select 1 as found from task where run_id = ? and attempt > 0"
                            " limit 1", (run_pk,)))  # fmt: skip


def step_status_spread(ledger: Ledger, run_pk: int,
                       final_only: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """Per (step, stored status) over the run's tasks (final attempts only if `final_only`):
    n, first start, last finish, finished count (done), and dmin/dmax/davg task seconds."""
    final = f" and {_FINAL_ATTEMPT}" if final_only else ""
    return rows(ledger, f"select t.step as step, t.status as status, count(*) as n,"
                        f" min(t.started_at) as first, max(t.finished_at) as last,"
                        f" count(t.finished_at) as done, min(d) as dmin, max(d) as dmax,"
                        f" avg(d) as davg from (select t.*, {_TASK_SECONDS} as d from task t"
                        f" where t.run_id = ?{final}) t group by t.step, t.status", (run_pk,))  # fmt: skip


def final_tasks_of_steps(ledger: Ledger, run_pk: int, steps: list[str],
                         limit: int) -> list[dict[str, Any]]:  # fmt: skip
    """The final attempts of the tasks of `steps`, in start order, at most `limit`."""
    return rows(ledger, f"select {_TASK_COLUMNS} from task t where t.run_id = ? and t.step in"
                        f" (select value from json_each(?)) and {_FINAL_ATTEMPT}"
                        " order by t.started_at, t.id limit ?",
                (run_pk, json.dumps(steps), limit))  # fmt: skip


def step_attempts_by_task(ledger: Ledger, run_pk: int, step: str,
                          after: tuple[int, str] | None, limit: int) -> list[dict[str, Any]]:  # fmt: skip
    """Up to `limit` task attempt rows of a step in task-id order (numeric), latest attempt
    first within a task, after the (length, task_id) `after`. The ids are sorted from the
    (run_id, step, task_id, attempt) index alone; only these rows are read from the table."""
    ids = "select i.id from task i where i.run_id = ? and i.step = ?"
    params: list[Any] = [run_pk, step]
    if after is not None:
        ids += " and (length(i.task_id), i.task_id) > (?, ?)"
        params += list(after)
    ids += " order by length(i.task_id), i.task_id, i.attempt desc limit ?"
    return rows(ledger, f"select {_TASK_COLUMNS} from task t where t.id in ({ids})"
                        " order by length(t.task_id), t.task_id, t.attempt desc",
                [*params, limit])  # fmt: skip


def blob_size_and_encoding(ledger: Ledger, sha: str) -> dict[str, Any] | None:
    """The blob row's encoding and raw_size: what decompressing it produces (the blob store
    refuses chunks that do not add up to exactly this), unlike an artifact row's `size`."""
    return one(ledger, "select encoding, raw_size from blob where sha = ?", (sha,))


def task_place(ledger: Ledger, task_pk: int) -> dict[str, Any] | None:
    """A task attempt's flow, run_id, step and task_id, or None."""
    return one(ledger, "select f.name as flow, r.run_id as run_id, t.step as step, t.task_id"
                       " as task_id from task t join run r on r.id = t.run_id join flow f on"
                       " f.id = r.flow_id where t.id = ?", (task_pk,))  # fmt: skip


def runs_table(ledger: Ledger, flow_pk: int, tags: list[str], artifacts: list[str],
               limit: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """A flow's runs having every tag, newest first, each with its liveness columns, user
    tags (JSON list) and `arts`: a JSON object of the named artifacts' plain stored values
    (the task that finished last wins). One query: `Flow.runs_dataframe`."""
    sql = (
        "select r.run_id as run_id, r.status as status, r.created_at as created_at,"
        " r.finished_at as finished_at, r.user as user, r.params as params, r.host as host,"
        " r.pid as pid, r.heartbeat_at as heartbeat_at,"
        " (select json_group_array(g.tag) from tag g where g.run_id = r.id and g.system = 0)"
        " as tags,"
        " (select json_group_object(name, value) from (select a.name as name, a.value as"
        " value from task t join artifact a on a.task_id = t.id where t.run_id = r.id and"
        " a.name in (select value from json_each(?)) and a.value is not null"
        " order by t.finished_at, t.id)) as arts"
        " from run r where r.flow_id = ?"
        + "".join(" and exists (select 1 from tag g where g.run_id = r.id and g.tag = ?)"
                  for _ in tags)
        + " order by r.created_at desc, r.id desc" + (" limit ?" if limit else "")
    )  # fmt: skip
    params: list[Any] = [json.dumps(artifacts), flow_pk, *tags]
    if limit:
        params.append(limit)
    return rows(ledger, sql, params)
