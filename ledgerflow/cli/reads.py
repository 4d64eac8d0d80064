"""What `ledgerflow runs`, `show` and `logs` print, as plain dicts, over the library's
indexed reads (`ledgerflow/reads.py`: every statement starts from an index, nothing is
unpickled).

The dicts are the `--json` output of those commands; README.md documents their keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .. import reads
from ..clock import seconds_between
from ..exceptions import MetaflowNotFound
from ..ledger import Ledger

# The commands look these up here, beside the records they print.
from ..reads import flows_with_run, require_flow, run_row, shown_task_status, step_order, step_tasks

__all__ = [
    "artifact_record", "artifact_records", "final_tasks", "flows_with_run", "log_tasks",
    "recent_runs", "require_flow", "run_record", "run_row", "screen_log", "step_summaries",
    "step_tasks", "task_record",
]  # fmt: skip


# -- runs ------------------------------------------------------------------------------


def recent_runs(
    ledger: Ledger,
    flow: str | None = None,
    status: str | None = None,
    tags: Iterable[str] = (),
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Run records, newest first: of one flow, or of every flow (each flow's newest via the
    (flow, created_at) index, then merged), having every tag in `tags`."""
    found_flow = reads.flow(ledger, flow) if flow is not None else None
    flows = reads.flows(ledger) if flow is None else [found_flow] if found_flow else []
    found = []
    for f in flows:  # tags are read for the `limit` runs shown only (run_record)
        found += reads.flow_runs(ledger, f, tags=tags, status=status, limit=limit, listing=True)
    found.sort(key=lambda row: (row["created_at"], row["run_id"]), reverse=True)
    return [run_record(ledger, row["flow"], row) for row in found[:limit]]


def run_record(ledger: Ledger, flow: str, row: dict[str, Any]) -> dict[str, Any]:
    """A run as `runs --json` shows it."""
    tags = reads.tag_pairs(row) if "tags" in row else reads.run_tags(ledger, row["pk"])
    return {
        "pathspec": f"{flow}/{row['run_id']}",
        "flow": flow,
        "run_id": row["run_id"],
        "status": reads.shown_run_status(row),
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "duration_s": seconds_between(row["created_at"], row["finished_at"]),
        "tasks": reads.task_count(ledger, row["pk"]),
        "user": row["user"],
        "tags": sorted(t for t, system in tags if not system),
        "system_tags": sorted(t for t, system in tags if system),
        "params": json.loads(row["params"] or "{}"),
    }


# -- steps and tasks -------------------------------------------------------------------


def screen_log(text: str) -> str:
    """A task's output as `logs` prints it on a terminal: a carriage return starts a new
    line (a progress bar shows each state; a sender cannot overwrite a line to hide what it
    says), every other control character but tab and newline is shown escaped (\\x1b: no
    ESC or OSC sequence reaches the terminal). `logs --raw` prints the text as stored."""
    from .common import printable

    return printable(text.replace("\r\n", "\n").replace("\r", "\n"))


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
            order = step_order(ledger, reads.run_pk(ledger, parts[0], parts[1]))
            steps = [by_name[name] for name in order if name in by_name]
        tasks = [t for step in steps for t in sorted(step, key=lambda t: reads.id_key(t.id))]
        if attempt is None:
            return tasks
        found = [Task(t.pathspec, attempt=attempt, ledger=ledger)
                 for t in tasks if attempt <= t.current_attempt]  # fmt: skip
    if not found:
        raise MetaflowNotFound(f"no task of {pathspec} has an attempt {attempt}")
    return found


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
        "origin_pathspec": row["origin_pathspec"],  # cloned by resume or reused (--reuse)
    }


def step_summaries(ledger: Ledger, run: dict[str, Any], run_pk: int) -> list[dict[str, Any]]:
    """Each step of a run in graph order: its number of tasks and how many have each status."""
    by_step: dict[str, dict[str, int]] = {}
    for step, stored, n in reads.step_status_counts(ledger, run_pk):
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


def artifact_records(ledger: Ledger, flow: str, run_id: str, step: str, task_id: str,
                     attempt: int, private: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """The artifacts a task attempt holds (what task.data shows), by name, with the stored
    type, size and preview: nothing is loaded."""
    rows = reads.attempt_artifacts(ledger, flow, run_id, step, task_id, attempt)
    return [_artifact(r) for r in rows if private or not r["name"].startswith("_")]


def artifact_record(ledger: Ledger, flow: str, run_id: str, step: str, task_id: str,
                    attempt: int, name: str) -> dict[str, Any]:  # fmt: skip
    """One artifact of a task attempt, as `show --json` shows it."""
    rows = reads.attempt_artifacts(ledger, flow, run_id, step, task_id, attempt, name)
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


def final_tasks(ledger: Ledger, run_pk: int, step: str | None = None,
                task_id: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The final attempt of each task of a run (or of one step, or one task), by step then
    task id."""
    rows = reads.final_tasks(ledger, run_pk, step, task_id)
    rows.sort(key=lambda r: (r["step"], reads.id_key(r["task_id"])))
    return rows
