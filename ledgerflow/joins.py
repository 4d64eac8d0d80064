"""A join's inputs: their artifact maps, steps and foreach stacks read from the ledger by
task pk (`resolve_join_inputs`), and the `inputs` object a join step receives.

Owner: taskpath (task.py calls both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .exceptions import LedgerError
from .flowspec import FlowSpec, ForeachFrame, Inputs, TaskState
from .ledger import Ledger
from .records import ArtifactRecord
from .structs import replace
from .taskspec import TaskSpec


def resolve_join_inputs(spec: TaskSpec, ledger: Ledger) -> TaskSpec:
    """A join's spec with its inputs' artifact maps, steps and foreach stacks, read from the
    ledger by task pk (the runtime committed them before the join started). Two indexed
    queries, whatever the number of inputs."""
    if not spec.is_join or spec.inputs or not spec.input_pks:
        return spec
    import json

    from . import reads

    tasks = {pk: (step, stack) for pk, step, stack in reads.tasks_by_pk(ledger, spec.input_pks)}
    inputs: dict[int, dict[str, ArtifactRecord]] = {pk: {} for pk in spec.input_pks}
    # What the inputs inherited alike (the start's values, parameters) is one record shared
    # by every input, not one copy per input; so are equal foreach frames.
    shared: dict[tuple[Any, ...], ArtifactRecord] = {}
    frames: dict[tuple[Any, ...], ForeachFrame] = {}
    for pk, *row in reads.artifacts_of_tasks(ledger, spec.input_pks):
        key = tuple(row)
        record = shared.get(key)
        if record is None:
            name, sha, encoding, type_, size, value, text, inherited = row
            record = shared[key] = ArtifactRecord(name, sha, encoding, type_, size, value,
                                                  text, bool(inherited))  # fmt: skip
        inputs[pk][record.name] = record
    missing = [pk for pk in spec.input_pks if pk not in tasks]
    if missing:
        raise LedgerError(f"join {spec.pathspec}: input task rows {missing[:5]} are not in "
                          f"{spec.ledger_path}; was the ledger replaced during the run?")  # fmt: skip
    return replace(
        spec,
        inputs=[inputs[pk] for pk in spec.input_pks],
        input_steps=[tasks[pk][0] for pk in spec.input_pks],
        input_stacks=[
            [frames.setdefault(tuple(f), ForeachFrame(*f)) for f in json.loads(stack or "[]")]
            for _, stack in (tasks[pk] for pk in spec.input_pks)
        ],
    )


def join_inputs(cls: type[FlowSpec], graph: Any, spec: TaskSpec,
                 load: Callable[[str], Any]) -> Inputs:  # fmt: skip
    flows = []
    for refs, step, stack in zip(spec.inputs, spec.input_steps, spec.input_stacks):
        state = TaskState(
            step_name=step,
            graph=graph,
            refs=dict(refs),
            load=load,
            foreach_stack=list(stack),
            is_input_view=True,
        )
        flows.append(cls._for_task(state))
    return Inputs(flows)
