"""Metaflow's internal artifacts, computed from what the ledger already records.

Metaflow stores `_success`, `_task_ok`, `_foreach_stack`, `_transition`, `_graph_info`, ...
as artifacts of every task. ledgerflow keeps those facts in columns (task status, exception,
foreach stack and transition; the run's graph) and builds the same values on request, so a
task costs a few rows instead of a dozen. `_foreach_values` is a real artifact (it is data,
and children inherit it). Read them as in Metaflow: `task["_graph_info"].data`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .flowspec import ForeachFrame

# Built from columns; `_foreach_values` is stored, so it is not listed here.
INTERNAL_ARTIFACTS = (
    "_current_step", "_exception", "_foreach_num_splits", "_foreach_stack", "_foreach_var",
    "_graph_info", "_iteration_stack", "_success", "_task_ok", "_transition",
)  # fmt: skip


def transition_record(transition: Any) -> dict[str, Any] | None:
    """The task.transition column for a flowspec.Transition (None when there is none)."""
    if transition is None:
        return None
    return {
        "targets": list(transition.targets),
        "foreach": transition.foreach,
        "num_splits": transition.num_splits,
        "condition": transition.condition,
    }


def internal_value(name: str, task: dict[str, Any], graph_info: Callable[[], Any]) -> Any:
    """The value of internal artifact `name` for a task row (step, status, exception_type,
    exception, foreach_stack, transition); graph_info() returns the run's graph."""
    status = task["status"]
    finished = status in ("succeeded", "caught")
    transition = json.loads(task["transition"]) if task.get("transition") else None
    if name == "_current_step":
        return task["step"]
    if name == "_success":
        return status == "succeeded"
    if name == "_task_ok":
        return finished
    if name == "_exception":
        if finished or not task.get("exception_type"):
            return None
        return {"type": task["exception_type"], "exception": task.get("exception")}
    if name == "_foreach_stack":
        return [ForeachFrame(*frame) for frame in json.loads(task.get("foreach_stack") or "[]")]
    if name == "_foreach_var":
        return transition["foreach"] if transition else None
    if name == "_foreach_num_splits":
        return transition["num_splits"] if transition else None
    if name == "_transition":
        return (list(transition["targets"]), transition["foreach"]) if transition else None
    if name == "_iteration_stack":
        return []
    if name == "_graph_info":
        return graph_info()
    raise KeyError(name)
