"""A join's inputs: their artifact maps, steps and foreach stacks read from the ledger by
task pk (`resolve_join_inputs`), and the `inputs` object a join step receives, whose values
load a column at a time (`ColumnLoads`: the first read of an artifact readies it for every
input in a few queries).

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
from .taskblobs import BlobAccess
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
    # (a join of 10,000 inputs reads ~50,000 rows: plain statements per row)
    for row in reads.artifacts_of_tasks(ledger, spec.input_pks):
        key = row[1:]
        record = shared.get(key)
        if record is None:
            record = shared[key] = ArtifactRecord(row[1], row[2], row[3], row[4], row[5], row[6],
                                                  row[7], bool(row[8]))  # fmt: skip
        inputs[row[0]][row[1]] = record
    missing = [pk for pk in spec.input_pks if pk not in tasks]
    if missing:
        raise LedgerError(f"join {spec.pathspec}: input task rows {missing[:5]} are not in "
                          f"{spec.ledger_path}; was the ledger replaced during the run?")  # fmt: skip
    return replace(
        spec,
        inputs=[inputs[pk] for pk in spec.input_pks],
        input_steps=[tasks[pk][0] for pk in spec.input_pks],
        input_stacks=[_frames(tasks[pk][1], frames, json.loads) for pk in spec.input_pks],
    )


def _frames(stack: str | None, frames: dict[tuple[Any, ...], ForeachFrame],
            loads: Callable[[str], Any]) -> list[ForeachFrame]:  # fmt: skip
    """An input's foreach stack (its JSON), equal frames shared between inputs."""
    found = []
    for f in loads(stack or "[]"):
        key = tuple(f)
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = ForeachFrame(*f)
        found.append(frame)
    return found


def join_inputs(cls: type[FlowSpec], graph: Any, spec: TaskSpec, blobs: BlobAccess) -> Inputs:
    load = ColumnLoads(spec.inputs, blobs).load
    flows = []
    for refs, step, stack in zip(spec.inputs, spec.input_steps, spec.input_stacks):
        # (every field, in order: a struct's quickest construction, once an input)
        state = TaskState(step, graph, dict(refs), load, list(stack), frozenset(), None, 100,
                          {}, None, True)  # fmt: skip
        flows.append(cls._for_task(state))
    return Inputs(flows)


class ColumnLoads:
    """A join's loads, a column at a time: the first value read of an artifact readies that
    artifact's values of every input at once (`BlobAccess.prefetch`), since a join reads a
    column (`sum(i.x for i in inputs)`): measured on a join of 1,000 inputs in a process of
    its own, 130 ms of single loads became one query and 1,000 cache hits."""

    __slots__ = ("_blobs", "_columns", "_column_of")

    def __init__(self, inputs: list[dict[str, ArtifactRecord]], blobs: BlobAccess):
        self._blobs = blobs
        self._columns: dict[str, list[str]] = {}  # name -> the inputs' distinct SHAs
        self._column_of: dict[str, str] = {}  # SHA -> the name it was first seen under
        for refs in inputs:
            for name, record in refs.items():
                if record.sha not in self._column_of:
                    self._column_of[record.sha] = name
                    self._columns.setdefault(name, []).append(record.sha)

    def load(self, sha: str) -> Any:
        name = self._column_of.get(sha)
        if name is not None:
            shas = self._columns.pop(name, None)
            if shas is not None and len(shas) > 1:
                self._blobs.prefetch(shas)
        return self._blobs.load(sha)
