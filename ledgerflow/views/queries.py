"""What the pages of `ledgerflow ui` read, over the ledger's read-only connection, through
the library's reads (`ledgerflow/reads.py`).

Every list is paged (keyset paging on indexed columns, so the 2,000th page of 100k runs
costs what the first does) and nothing here decodes a value: previews and the plain `value`
column only.
"""

from __future__ import annotations

import json
from typing import Any

from .. import reads

PAGE = 50
MAX_GANTT_TASKS = 2000

# A 'running' run whose process is gone shows as 'crashed' (as `ledgerflow runs`).
shown_status = reads.shown_run_status


def runs_page(ledger: Any, flow: str | None, status: str | None, tag: str | None,
              after: str | None) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """One page of runs, newest first, and the cursor of the next page (None at the end).
    The cursor is 'created_at|id' of the last run looked at; the run(created_at) index
    makes each page one index range, however deep."""
    live = status in ("running", "crashed")  # a dead 'running' run shows as crashed
    rows: list[dict[str, Any]] = []
    cursor = after
    while True:
        before = None
        if cursor:
            created, _, pk = cursor.partition("|")
            before = (created, int(pk) if pk.isdigit() else 0)
        batch = reads.runs_page(ledger, flow_name=flow, status=status, tag=tag, before=before,
                                limit=PAGE + 1)  # fmt: skip
        for row in batch[:PAGE]:
            row["shown_status"] = shown_status(row)
            if not live or row["shown_status"] == status:
                rows.append(row)
            if len(rows) == PAGE:
                more = len(batch) > PAGE or row is not batch[-1]
                return rows, f"{row['created_at']}|{row['pk']}" if more else None
        if len(batch) <= PAGE:
            return rows, None
        cursor = f"{batch[PAGE - 1]['created_at']}|{batch[PAGE - 1]['pk']}"


def flows(ledger: Any) -> list[str]:
    return reads.flow_names(ledger)


def run(ledger: Any, flow: str, run_id: str) -> dict[str, Any] | None:
    row = reads.find_run(ledger, flow, run_id, graph=True)
    if row is not None:
        row["shown_status"] = shown_status(row)
        row["tags"] = sorted(t for t, system in reads.tag_pairs(row) if not system)
        from .graphview import clean_graph

        raw, problem = _json(row.pop("graph_info"), {})
        row["graph"], row["graph_problems"] = clean_graph(raw)
        if problem:
            row["graph_problems"].insert(0, f"graph_info {problem}; the graph is not drawn")
        row["params"], _ = _json(row["params"], {})
    return row


def _json(text: Any, default: Any) -> tuple[Any, str | None]:
    """(value, None), or (default, what is wrong) for a column that is not JSON text."""
    if not text:
        return default, None
    if not isinstance(text, str):
        return default, f"is a {type(text).__name__}, not JSON text"
    try:
        return json.loads(text), None
    except ValueError as e:
        return default, f"is not valid JSON ({e})"
    except RecursionError:
        return default, "is nested too deeply to read"


def final_tasks(ledger: Any, run_pk: int, step: str | None = None,
                limit: int = MAX_GANTT_TASKS) -> list[dict[str, Any]]:  # fmt: skip
    """Each task's final attempt, in start order (at most `limit`)."""
    return reads.final_tasks(ledger, run_pk, step or None, limit=limit)


def run_signature(ledger: Any, run_pk: int) -> str:
    """Changes whenever the run's status or its tasks change (the run page polls it)."""
    row = reads.run_progress(ledger, run_pk)
    return "|".join(str(v) for v in row) if row else "gone"


def task_attempts(ledger: Any, run_pk: int, step: str, task_id: str) -> list[dict[str, Any]]:
    return reads.task_attempts(ledger, run_pk, step, task_id)


def task_state(ledger: Any, task_pk: int) -> dict[str, Any] | None:
    """A task attempt's finished_at and its run's shown status (shown_status), or None."""
    row = reads.task_and_run_state(ledger, task_pk)
    if row is not None:
        row["shown_status"] = shown_status(row)
    return row


def logs(ledger: Any, task_pk: int) -> dict[str, str]:
    return reads.logs(ledger, task_pk)


def artifacts(ledger: Any, task_pk: int) -> list[dict[str, Any]]:
    return reads.task_artifacts(ledger, task_pk, public=True, blob=True)


def artifact(ledger: Any, task_pk: int, name: str) -> dict[str, Any] | None:
    return reads.find_artifact(ledger, task_pk, name, blob=True)


def card(ledger: Any, card_pk: int) -> dict[str, Any] | None:
    return reads.card(ledger, card_pk)


# -- wide runs: counted in SQL, never read task by task ----------------------------------------

_SUMMARIES: dict[tuple[str, int], tuple[str, dict[str, dict[str, Any]]]] = {}
_SUMMARIES_KEPT = 64  # runs whose step summaries are kept (a finished run's never change)


def step_summaries(ledger: Any, run_pk: int) -> dict[str, dict[str, Any]]:
    """Per step, over each task's final attempt: tasks (n), count per status, first start,
    last finish, how many finished, and the min/mean/max task duration in seconds. Grouped
    in SQL (a 10,000-task foreach is never read task by task), and kept per run until its
    signature (status, task count, newest task) changes: a finished run's page costs one
    indexed count after its first view."""
    key = (str(ledger.path), run_pk)
    signature = run_signature(ledger, run_pk)
    kept = _SUMMARIES.get(key)
    if kept is not None and kept[0] == signature:
        return kept[1]
    summaries = _step_summaries(ledger, run_pk)
    if len(_SUMMARIES) >= _SUMMARIES_KEPT:
        _SUMMARIES.pop(next(iter(_SUMMARIES)))
    _SUMMARIES[key] = (signature, summaries)
    return summaries


def _step_summaries(ledger: Any, run_pk: int) -> dict[str, dict[str, Any]]:
    # Without retries every row is its task's final attempt: skip the per-row check (it is
    # most of the cost: ~50 ms over 10,000 tasks here).
    found = reads.step_status_spread(ledger, run_pk, reads.run_has_retries(ledger, run_pk))
    out: dict[str, dict[str, Any]] = {}
    for r in found:
        s = out.setdefault(str(r["step"]), {"n": 0, "statuses": {}, "first": None, "last": None,
                                            "done": 0, "dmin": None, "dmax": None, "dsum": 0.0,
                                            "dn": 0})  # fmt: skip
        s["n"] += r["n"]
        s["statuses"][str(r["status"])] = r["n"]
        s["done"] += r["done"]
        for key, pick in (("first", min), ("last", max), ("dmin", min), ("dmax", max)):
            values = [v for v in (s[key], r[key]) if isinstance(v, str | int | float)]
            s[key] = pick(values, key=lambda v: (isinstance(v, str), v)) if values else None
        if isinstance(r["davg"], int | float):
            s["dsum"] += r["davg"] * r["done"]
            s["dn"] += r["done"]
    for s in out.values():
        s["davg"] = s["dsum"] / s["dn"] if s["dn"] else None
    return out


def tasks_of_steps(ledger: Any, run_pk: int, steps: list[str], limit: int) -> list[dict[str, Any]]:
    """The final attempts of the tasks of `steps` (narrow ones, drawn task by task), in start
    order, at most `limit`."""
    return reads.final_tasks_of_steps(ledger, run_pk, steps, limit)


def step_tasks_page(ledger: Any, run_pk: int, step: str, after: tuple[int, str] | None,
                    size: int = PAGE) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """One page of a step's tasks (final attempts) in task-id order, after the (length,
    task_id) of the previous page's last task (keyset paging), plus one more task when there
    is a next page, and the step's task count. Rows come sorted by task then attempt
    (latest first) and the first row of each task is kept: no per-row final-attempt check,
    so a page of a 10,000-task step reads about a page of rows."""
    # A LIMIT lets SQLite keep only the top rows while it sorts (2 ms, not 50, for 10,000
    # tasks); retried tasks take several rows, so widen it when the page comes up short.
    limit = (size + 1) * 4
    while True:
        rows = reads.step_attempts_by_task(ledger, run_pk, step, after, limit)
        found: list[dict[str, Any]] = []
        last = None
        for row in rows:
            if row["task_id"] == last:
                continue  # an earlier attempt of the task just taken
            last = row["task_id"]
            found.append(row)
            if len(found) > size:
                break
        if len(found) > size or len(rows) < limit:
            break
        limit *= 8
    return found, int(step_summaries(ledger, run_pk).get(step, {}).get("n", 0))


def blob_facts(ledger: Any, sha: str) -> dict[str, Any] | None:
    """The blob row's encoding and raw size: what decompressing it produces (the blob store
    refuses a blob whose chunks do not add up to exactly this), not the artifact row's claim."""
    return reads.blob_size_and_encoding(ledger, sha)


def task_row(ledger: Any, task_pk: int) -> dict[str, Any] | None:
    """A task attempt's flow, run id, step and task id (for links), or None."""
    return reads.task_place(ledger, task_pk)
