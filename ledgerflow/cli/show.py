"""`ledgerflow show PATHSPEC`: what a flow, run, step, task or artifact holds.

`describe()` builds the `--json` document (a dict with `kind`), `lines()` the text. The
Client API resolves the pathspec (so a missing object gets its message saying what is
there instead); the rows come from `reads`. Nothing is loaded unless `load=True` is given
for one artifact.
"""

from __future__ import annotations

import json
import pprint
from typing import Any

import click

from ..clock import format_duration, screen_time
from ..ledger import Ledger
from . import reads
from .common import all_namespaces, clip, echo_table, printable_doc

KINDS = ("flow", "run", "step", "task", "artifact")
FLOW_RUNS = 10  # runs `show FLOW` lists
LOG_TAIL = 10  # lines of each stream `show TASK` prints
STEP_TASKS = 100  # tasks `show STEP` lists unless --limit says otherwise


def tail(text: str, lines: int = LOG_TAIL) -> str:
    """The last `lines` lines of a log ('' for none)."""
    return "".join(text.splitlines(keepends=True)[-lines:])


def describe(ledger: Ledger, parts: list[str], load: bool = False,
             limit: int = STEP_TASKS) -> dict[str, Any]:  # fmt: skip
    """The document for the object named by the pathspec `parts` (1 to 5 of them). A step
    lists its first `limit` tasks by task id (0: all) and counts them all (`task_count`)."""
    from ..client import DataArtifact, Flow, Run, Step, Task

    pathspec = "/".join(parts)
    with all_namespaces():
        if len(parts) == 1:
            Flow(pathspec, ledger=ledger)
            runs = reads.recent_runs(ledger, flow=parts[0], limit=FLOW_RUNS)
            return {"kind": "flow", "pathspec": pathspec, "flow": parts[0], "runs": runs}
        flow, run_id = parts[:2]
        Run(f"{flow}/{run_id}", ledger=ledger)
        row = reads.run_row(ledger, flow, run_id)
        run = reads.run_record(ledger, flow, row)
        if len(parts) == 2:
            return {"kind": "run", **run, "steps": reads.step_summaries(ledger, run, row["pk"])}
        step = parts[2]
        if len(parts) == 3:
            Step(pathspec, ledger=ledger)
            tasks, total = reads.step_tasks(ledger, row["pk"], step, limit or None)
            return {
                "kind": "step", "pathspec": pathspec, "flow": flow, "run_id": run_id,
                "step": step, "task_count": total,
                "tasks": [reads.task_record(run["pathspec"], t, run["status"]) for t in tasks],
            }  # fmt: skip
        task_id = parts[3]
        if len(parts) == 4:
            client_task = Task(pathspec, ledger=ledger)
            attempt = client_task.current_attempt
            task = reads.final_tasks(ledger, row["pk"], step, task_id)[0]
            return {
                "kind": "task", **reads.task_record(run["pathspec"], task, run["status"]),
                "flow": flow, "run_id": run_id, "step": step,
                "artifacts": reads.artifact_records(ledger, flow, run_id, step, task_id,
                                                    attempt),
                # whatever the log table holds so far (a running task's output too)
                "stdout_tail": tail(client_task.stdout), "stderr_tail": tail(client_task.stderr),
            }  # fmt: skip
        artifact = DataArtifact(pathspec, ledger=ledger)
        attempt = artifact.parent.current_attempt
        record = reads.artifact_record(ledger, flow, run_id, step, task_id, attempt, parts[4])
        doc = {"kind": "artifact", "pathspec": pathspec, "flow": flow, "run_id": run_id,
               "step": step, "task_id": task_id, "attempt": attempt, **record}  # fmt: skip
        if load:
            value = artifact.data  # pickles written elsewhere need trust (see provenance.py)
            doc["value"] = value if record["encoding"] == "json" else repr(value)
        return doc


def echo(doc: dict[str, Any]) -> None:
    """Print a describe() document as text."""
    printers = {"flow": _echo_flow, "run": _echo_run, "step": _echo_step, "task": _echo_task,
                "artifact": _echo_artifact}  # fmt: skip
    printers[doc["kind"]](printable_doc(doc))  # names and previews may hold escape codes


def echo_runs(runs: list[dict[str, Any]], with_flow: bool = True,
              with_params: bool = False) -> None:  # fmt: skip
    """The run table of `ledgerflow runs` (and of `show FLOW`, without the flow column)."""
    headers = ["run id"] + (["flow"] if with_flow else []) + ["status", "started", "duration",
                                                              "tasks", "tags"]  # fmt: skip
    echo_table(headers + (["params"] if with_params else []), [
        [r["run_id"]] + ([r["flow"]] if with_flow else []) + [
            r["status"], screen_time(r["created_at"]), format_duration(r["duration_s"]),
            r["tasks"], r["tags"]] + ([params_text(r["params"])] if with_params else [])
        for r in runs
    ])  # fmt: skip


def params_text(params: dict[str, Any]) -> str:
    """'alpha=0.5 n=3': parameter values as JSON text, in name order."""
    return " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(params.items()))


def _echo_flow(doc: dict[str, Any]) -> None:
    runs = doc["runs"]
    click.echo(f"Flow {doc['flow']}: the newest {len(runs)} run{'s' if len(runs) != 1 else ''}")
    echo_runs(runs, with_flow=False)


def _echo_run(doc: dict[str, Any]) -> None:
    click.echo(f"Run {doc['pathspec']}: {doc['status']}, started {screen_time(doc['created_at'])}"
               + (f", took {format_duration(doc['duration_s'])}" if doc["duration_s"] else "")
               + f", by {doc['user']}")  # fmt: skip
    click.echo(f"Parameters: {params_text(doc['params']) or '-'}")
    click.echo(f"Tags: {', '.join(doc['tags']) or '-'}")
    click.echo(f"System tags: {', '.join(doc['system_tags'])}")
    echo_table(["step", "tasks", "status"],
               [[s["step"], s["tasks"], _status_summary(s)] for s in doc["steps"]])  # fmt: skip


def _status_summary(step: dict[str, Any]) -> str:
    statuses = step["statuses"]
    if step["tasks"] == 1:
        return str(next(iter(statuses)))
    return ", ".join(f"{n} {status}" for status, n in statuses.items())


def _echo_step(doc: dict[str, Any]) -> None:
    tasks, total = doc["tasks"], doc["task_count"]
    shown = (
        f" (the first {len(tasks)} by task id; --limit N for more, 0 for all)"
        if len(tasks) < total
        else ""
    )
    click.echo(f"Step {doc['pathspec']}: {total} task{'s' if total != 1 else ''}{shown}")
    failed = any(t["exception_type"] for t in tasks)
    cloned = any(t["origin_pathspec"] for t in tasks)
    headers = ["task id", "status", "attempt", "index", "started", "duration"]
    echo_table(headers + (["exception"] if failed else []) + (["cloned from"] if cloned else []), [
        [t["task_id"], t["status"], t["attempt"], t["foreach_index"],
         screen_time(t["started_at"]), format_duration(t["duration_s"])]
        + ([clip(_exception(t), 60)] if failed else [])
        + ([t["origin_pathspec"] or ""] if cloned else [])
        for t in tasks
    ])  # fmt: skip


def _exception(task: dict[str, Any]) -> str:
    if not task["exception_type"]:
        return ""
    return f"{task['exception_type']}: {task['exception'] or ''}"


def _echo_task(doc: dict[str, Any]) -> None:
    index = "" if doc["foreach_index"] is None else f", foreach index {doc['foreach_index']}"
    click.echo(f"Task {doc['pathspec']}: {doc['status']}, attempt {doc['attempt']}{index}, "
               f"started {screen_time(doc['started_at'])}"
               + (f", took {format_duration(doc['duration_s'])}" if doc["duration_s"] else ""))  # fmt: skip
    if doc["exception_type"]:
        click.echo(f"Exception: {_exception(doc)}")
    if doc["origin_pathspec"]:  # resume, or run --reuse (`ledgerflow explain` says why)
        click.echo(f"Cloned from {doc['origin_pathspec']} (not run again).")
    arts = doc["artifacts"]
    if not arts:
        click.echo("No artifacts.")
    else:
        echo_table(["name", "type", "size", "preview"],
                   [[a["name"], a["type"], a["size"], clip(a["preview"], 60)] for a in arts])  # fmt: skip
    for stream in ("stdout", "stderr"):
        text = doc[f"{stream}_tail"]
        if text:
            click.echo(f"{stream} (last {LOG_TAIL} lines; all: ledgerflow logs "
                       f"{doc['pathspec']}):")  # fmt: skip
            for line in text.splitlines():
                click.echo(f"  {line}")


def _echo_artifact(doc: dict[str, Any]) -> None:
    click.echo(f"Artifact {doc['pathspec']}")
    facts = [
        ("type", doc["type"]),
        ("size", f"{doc['size']} bytes"),
        ("encoding", doc["encoding"]),
        ("sha", doc["sha"]),
        ("attempt", doc["attempt"]),
        ("created", screen_time(doc["created_at"])),
        ("inherited", "yes (passed on unchanged from a parent task)" if doc["inherited"]
         else "no"),
        ("preview", doc["preview"]),
    ]  # fmt: skip
    if "value" in doc:  # a pickled value is already its repr()
        value = doc["value"]
        facts.append(("value", pprint.pformat(value, width=88) if doc["encoding"] == "json"
                      else value))  # fmt: skip
    for key, value in facts:
        text = str(value).replace("\n", "\n" + " " * 11)
        click.echo(f"{key + ':':<10} {text}".rstrip())
