"""What `resume` needs from the run it resumes: its successful tasks, by position.

A task's position is its step, the foreach indexes that led to it, and how many times that
step already ran at that position (a switch can loop back). A resumed run clones a task from
its origin — same artifacts by SHA, no blob written again — when the origin has a successful
task at the same position, every parent was cloned too, and the step is not one the user
asked to re-run. Everything else runs again.
"""

from __future__ import annotations

import json
from typing import Any

from . import reads
from .exceptions import LedgerflowError
from .flowspec import ForeachFrame, Transition
from .identify import stored_json
from .ledger import Ledger
from .records import ArtifactRecord
from .structs import field, struct

Position = tuple[str, tuple[int, ...]]


@struct
class OriginTask:
    pk: int
    pathspec: str
    status: str
    artifacts: dict[str, ArtifactRecord]
    stdout: str
    stderr: str
    foreach_stack: list[ForeachFrame]
    exception_type: str | None = None
    exception: str | None = None
    traceback: str | None = None
    transition: dict[str, Any] | None = None  # the task.transition column


@struct
class Origin:
    run_id: str
    tasks: dict[Position, list[OriginTask]] = field(factory=dict)
    params: dict[str, ArtifactRecord] = field(factory=dict)
    _used: dict[Position, int] = field(factory=dict)
    # The run row's `params` (JSON), for an origin stopped before its start task finished.
    recorded_params: dict[str, Any] = field(factory=dict)
    pathspec: str = ""

    def parameter_values(self, ledger: Ledger, params: list[tuple[str, Any]]) -> dict[str, Any]:
        """The origin's parameter values: from its start task's artifacts, or, when it was
        stopped before start finished, from the values its run row recorded (JSON: a file's
        contents, recorded by their repr, cannot come back that way)."""
        if self.params:
            return {name: ledger.load(record.sha) for name, record in self.params.items()}
        names = [name for name, _ in params]
        missing = [
            n
            for n, p in params
            if n not in self.recorded_params or type(p).__name__ == "IncludeFile"
        ]
        if missing:
            raise LedgerflowError(
                f"cannot resume {self.pathspec}: it stopped before its start step finished "
                f"and did not record parameter '{missing[0]}'; run the flow again instead"
            )
        return {n: self.recorded_params[n] for n in names}

    def take(self, step: str, foreach_stack: list[ForeachFrame]) -> OriginTask | None:
        """The origin's next task at this position, if it finished successfully."""
        position = (step, tuple(f.index for f in foreach_stack))
        seen = self._used.get(position, 0)
        self._used[position] = seen + 1
        candidates = self.tasks.get(position, [])
        if seen < len(candidates) and candidates[seen].status in ("succeeded", "caught"):
            return candidates[seen]
        return None


def latest_run_id(ledger: Ledger, flow_name: str) -> str:
    flow = reads.flow(ledger, flow_name)
    latest = reads.flow_runs(ledger, flow, limit=1, listing=True) if flow else []
    if not latest:
        raise LedgerflowError(
            f"there is no run of {flow_name} in {ledger.path} to resume; run it first"
        )
    return str(latest[0]["run_id"])


def load_origin(ledger: Ledger, flow_name: str, run_id: str, param_names: list[str]) -> Origin:
    run = reads.find_run(ledger, flow_name, run_id)
    if run is None:
        raise LedgerflowError(
            f"run {flow_name}/{run_id} does not exist in {ledger.path}; check --origin-run-id"
        )
    _require_trust_to_resume(ledger, run["pk"], f"{flow_name}/{run_id}")
    origin = Origin(run_id, pathspec=f"{flow_name}/{run_id}")
    recorded = stored_json(run["params"], f"run {flow_name}/{run_id}'s params", {})
    origin.recorded_params = recorded if isinstance(recorded, dict) else {}
    # The final attempt of each task, in the order the tasks were created.
    tasks = reads.final_tasks(ledger, run["pk"])
    tasks.sort(key=lambda t: reads.id_key(t["task_id"]))  # in the order they were created
    for t in tasks:
        task = origin_task(ledger, f"{flow_name}/{run_id}", t)
        position = (t["step"], tuple(f.index for f in task.foreach_stack))
        origin.tasks.setdefault(position, []).append(task)
        if t["step"] == "start":
            origin.params = {n: task.artifacts[n] for n in param_names if n in task.artifacts}
    return origin


def origin_task(ledger: Ledger, run_pathspec: str, t: dict[str, Any]) -> OriginTask:
    """A task of the ledger (a `reads` task row) as a clone copies it: its artifacts by
    SHA, its output, how it ended and what `self.next()` did."""
    pk, step = t["pk"], t["step"]
    stack = [ForeachFrame(*frame) for frame in json.loads(t["foreach_stack"] or "[]")]
    artifacts = {
        a["name"]: ArtifactRecord(a["name"], a["sha"], a["encoding"], a["type"], a["size"],
                                  a["value"], a["preview"], bool(a["inherited"]))
        for a in reads.task_artifacts(ledger, pk, blob=True)
    }  # fmt: skip
    logs = reads.logs(ledger, pk)
    return OriginTask(
        pk, f"{run_pathspec}/{step}/{t['task_id']}", t["status"], artifacts,
        logs["stdout"], logs["stderr"], stack, t["exception_type"], t["exception"],
        reads.task_traceback(ledger, pk),
        json.loads(t["transition"]) if t["transition"] else None,
    )  # fmt: skip


def _require_trust_to_resume(ledger: Ledger, run_pk: int, pathspec: str) -> None:
    """Resuming clones the origin's values into the new run, whose steps then load them:
    from a run whose pickles need trust (an imported one, a received ledger), resuming
    needs the same trust as loading them. Decided on the blobs' own encodings."""
    from .trust_store import require_trust, run_trusted

    if run_trusted(ledger, run_pk):
        return
    if reads.run_has_pickles(ledger, run_pk):  # the message names the run's source
        require_trust(ledger, run_pk, f"a value of {pathspec} (which resuming would load)")


def cloned_transition(ledger: Ledger, task: OriginTask) -> Transition | None:
    """What `self.next()` did in the origin task (its transition column), to schedule the
    cloned task's children the same way."""
    recorded = task.transition
    if recorded is None:
        return None
    transition = Transition(list(recorded["targets"]), foreach=recorded.get("foreach"),
                            condition=recorded.get("condition"))  # fmt: skip
    if transition.foreach is not None:
        transition.num_splits = recorded["num_splits"]
        transition.foreach_values = ledger.load(task.artifacts["_foreach_values"].sha)
    return transition


def steps_to_rerun(graph: Any, step: str) -> set[str]:
    """The named step and every step downstream of it."""
    if step not in graph:
        known = ", ".join(n.name for n in graph)
        raise LedgerflowError(f"resume: the flow has no step '{step}'; its steps are {known}")
    seen, todo = set(), [step]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name].out_funcs)
    return seen
