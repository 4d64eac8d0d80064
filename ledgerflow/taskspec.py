"""The records a task travels in: `TaskSpec` (what a worker needs to run one task; picklable,
sent to a task's process) and `TaskResult` (what the task produced, for the runtime's single
writer to commit).

Owner: taskpath. Both are read by the runtime, every executor and the task itself.
"""

from __future__ import annotations

# (marshal is built in and loaded already: imported here, not in the functions a task's
# process runs, where an import statement runs the import machinery, which raises and drops
# an AttributeError, in every task)
import marshal
from typing import Any

from . import codec
from .clock import stored_from_timestamp
from .flowspec import ForeachFrame, Transition
from .records import ArtifactRecord, CardRecord
from .structs import builder, field, struct


@struct
class TaskSpec:
    """Everything a worker needs to run one task; picklable."""

    flow_file: str
    flow_module: str
    class_name: str
    ledger_path: str
    flow_name: str
    run_id: str
    run_pk: int
    step: str
    task_id: str
    attempt: int = 0
    max_retries: int = 0  # from @retry(times=...)
    is_join: bool = False
    # One artifact map per parent task, and the parents' steps/stacks; a join is given its
    # parents' task pks instead, and reads the rest from the ledger (resolve_join_inputs).
    inputs: list[dict[str, ArtifactRecord]] = field(factory=list)
    input_pks: list[int] = field(factory=list)
    input_steps: list[str] = field(factory=list)
    input_stacks: list[list[ForeachFrame]] = field(factory=list)
    foreach_stack: list[ForeachFrame] = field(factory=list)
    foreach_item: tuple[str, bytes] | None = None  # the innermost item, encoded (if known)
    constants: dict[str, ArtifactRecord] = field(factory=dict)
    # sha -> (encoding, bytes) of small inputs the runtime had at hand (see runtime.py)
    preloaded: dict[str, tuple[str, bytes]] = field(factory=dict)
    param_names: frozenset[str] = frozenset()
    max_num_splits: int = 100
    username: str | None = None
    tags: list[str] = field(factory=list)
    origin_run_id: str | None = None
    # @timeout of the step in seconds (None: none), read once when the spec is made: the
    # executor's deadline and the task's own alarm both come from here.
    timeout: float | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step}/{self.task_id}"


@struct
class TaskResult:
    spec: TaskSpec
    status: str  # succeeded | failed | caught
    started_at: str
    finished_at: str
    artifacts: dict[str, ArtifactRecord] = field(factory=dict)
    blobs: list[codec.EncodedBlob] = field(factory=list)
    transition: Transition | None = None
    exception_type: str | None = None
    exception: str | None = None
    traceback: str | None = None
    location: str | None = None  # 'file:line' of the innermost user frame of the failure
    # Output: a task that ran sent it to its output sink as it came; these hold the text of
    # a task cloned by `resume` (its origin's output).
    stdout: str = ""
    stderr: str = ""
    warnings: list[str] = field(factory=list)  # the runtime shows them, even with --quiet
    cards: list[Any] = field(factory=list)  # CardRecords (ledgerflow/cards), blobs in `blobs`
    host: str | None = None  # the machine it ran on, if not the run's (a Dask worker)
    # Names of artifacts passed on as the spec gave them, sent instead of their records by a
    # task's process (taskoutput.compact_result); the runtime puts the records back.
    carried: list[str] = field(factory=list)

    @property
    def ok(self) -> bool:
        """The flow goes on after this task (it succeeded, or @catch caught its failure)."""
        return self.status in ("succeeded", "caught")


# -- the forms a spec and a result travel in between the runtime and a task's process --------
#
# A task's process is forked fresh for each task, and every object it builds or touches costs
# it page faults (copy-on-write pages shared with the fork server). A pickled TaskSpec made
# it look up and build a dozen classes' objects (TaskSpec, ArtifactRecords, ForeachFrames:
# measured 0.37 ms and 90 faults a task). On the wire, a spec and a result are plain tuples
# of str/int/bytes instead, written by marshal (the same interpreter reads them: a forked
# child, or a fresh one of the same executable), and rebuilt with each class's positional
# constructor. A value marshal cannot write (a record's `value` of some unusual type) sends
# the whole thing pickled instead; the first byte says which.

_MARSHAL, _PICKLE = b"M", b"P"
_WIRE_VERSION = 1


def _getter(cls: type) -> Any:
    import operator

    return operator.attrgetter(*cls.__struct_fields__)  # type: ignore[attr-defined]


_CARD_FIELDS = _getter(CardRecord)


# The fields of the records a task's result holds, read with plain attribute loads: an
# attrgetter reads each through its name, writing the name's reference count (a page copied
# in a task's process); these loads are specialised in the fork server's warm-up and touch
# only the record. test_taskcost.py holds each to its struct's fields, in order.
def _RECORD_FIELDS(r: ArtifactRecord) -> tuple[Any, ...]:  # noqa: N802 - as the getters
    return (r.name, r.sha, r.encoding, r.type, r.size, r.value, r.preview, r.inherited)


def _BLOB_FIELDS(b: codec.EncodedBlob) -> tuple[Any, ...]:  # noqa: N802
    return (b.sha, b.encoding, b.raw_size, b.stored_size, b.n_chunks, b.frames, b.spill_path,
            b.spill_sizes, b.raw, b.preview)  # fmt: skip


def _TRANSITION_FIELDS(t: Transition) -> tuple[Any, ...]:  # noqa: N802
    return (t.targets, t.foreach, t.condition, t.num_splits, t.foreach_values, t.foreach_items,
            t.lineno)  # fmt: skip


# -- records built in a task's process, one attribute store per field -----------------------
#
# A struct's constructor (structs.py) fills the instance's __dict__ from its tuple of field
# names: reading each name through the tuple writes the name's reference count, and the
# names are strings scattered over pages a task shares with the fork server, so each costs
# the task a page copied (measured: ~25 page faults a task for the spec, its records and the
# result). These (structs.builder) make the same objects with a plain attribute store per
# field, which writes only the new object (the names stay in the class's shared keys).
# test_taskcost.py holds each to its struct's own constructor: the same fields, values and
# order.

new_record = builder(ArtifactRecord)
new_result = builder(TaskResult, "spec status started_at finished_at artifacts blobs transition")
_new_spec = builder(TaskSpec)


def _records(records: dict[str, ArtifactRecord],
             seen: dict[tuple[Any, ...], tuple[Any, ...]] | None = None,
             ) -> list[tuple[str, tuple[Any, ...]]]:  # fmt: skip
    """(key, fields) of each record; with `seen`, equal records share one fields tuple, which
    marshal writes once (a parent's artifacts and the run's constants are often the same)."""
    pairs = []
    for key, record in records.items():
        fields = _RECORD_FIELDS(record)
        if seen is not None:
            try:
                fields = seen.setdefault(fields, fields)
            except TypeError:  # a value that cannot be hashed: written as it is
                pass
        pairs.append((key, fields))
    return pairs


def _from_records(pairs: list[tuple[str, tuple[Any, ...]]],
                  made: dict[int, ArtifactRecord] | None = None) -> dict[str, ArtifactRecord]:  # fmt: skip
    """The records _records listed; with `made`, one record per fields tuple (equal records
    written once are read as one object)."""
    if made is None:
        return {key: new_record(*fields) for key, fields in pairs}
    records = {}
    for key, fields in pairs:
        record = made.get(id(fields))
        if record is None:
            record = made[id(fields)] = new_record(*fields)
        records[key] = record
    return records


def _frames(tuples: list[tuple[Any, ...]]) -> list[ForeachFrame]:
    """ForeachFrames of their fields' tuples, as marshal read them (a NamedTuple's own
    constructor is a Python function a task would call, and write to, for each)."""
    frames = []
    for fields in tuples:
        if len(fields) != _FRAME_WIDTH:
            raise ValueError(f"a foreach frame has {_FRAME_WIDTH} fields, not {len(fields)}")
        frames.append(_tuple_new(ForeachFrame, fields))
    return frames


_tuple_new = tuple.__new__
_FRAME_WIDTH = len(ForeachFrame._fields)


def spec_to_wire(spec: TaskSpec) -> bytes:
    """The spec as a task's process receives it (spec_from_wire reads it back, equal)."""
    seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    plain = (
        _WIRE_VERSION, spec.flow_file, spec.flow_module, spec.class_name, spec.ledger_path,
        spec.flow_name, spec.run_id, spec.run_pk, spec.step, spec.task_id, spec.attempt,
        spec.max_retries, spec.is_join, [_records(refs, seen) for refs in spec.inputs],
        spec.input_pks, spec.input_steps, [[tuple(f) for f in stack] for stack in spec.input_stacks],
        [tuple(f) for f in spec.foreach_stack], spec.foreach_item, _records(spec.constants, seen),
        spec.preloaded, spec.param_names, spec.max_num_splits, spec.username, spec.tags,
        spec.origin_run_id, spec.timeout,
    )  # fmt: skip
    try:
        return _MARSHAL + marshal.dumps(plain)
    except ValueError:  # a type marshal does not write (a subclass of str, say)
        import pickle

        return _PICKLE + pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)


def spec_from_wire(data: bytes | memoryview) -> TaskSpec:
    """The TaskSpec spec_to_wire wrote."""
    if data[:1] == _PICKLE:
        import pickle

        spec = pickle.loads(data[1:])
        assert isinstance(spec, TaskSpec)
        return spec
    (version, flow_file, flow_module, class_name, ledger_path, flow_name, run_id, run_pk, step,
     task_id, attempt, max_retries, is_join, inputs, input_pks, input_steps, input_stacks,
     foreach_stack, foreach_item, constants, preloaded, param_names, max_num_splits, username,
     tags, origin_run_id, timeout) = marshal.loads(memoryview(data)[1:])  # fmt: skip
    assert version == _WIRE_VERSION
    # (loops and map, not comprehensions: each is a function object made per call, in a
    # process that pays for every object it touches)
    made: dict[int, ArtifactRecord] = {}
    parents = []
    for refs in inputs:
        parents.append(_from_records(refs, made))
    return _new_spec(
        flow_file, flow_module, class_name, ledger_path, flow_name, run_id, run_pk, step,
        task_id, attempt, max_retries, is_join, parents, input_pks, input_steps,
        list(map(_frames, input_stacks)), _frames(foreach_stack), foreach_item,
        _from_records(constants, made), preloaded,
        param_names, max_num_splits, username, tags, origin_run_id, timeout,
    )  # fmt: skip


def result_to_wire(result: TaskResult) -> bytes:
    """A task's result as its process sends it (without its spec: the runtime has it);
    result_from_wire reads it back."""
    t = result.transition
    plain = (
        _WIRE_VERSION, result.status, result.started_at, result.finished_at,
        _records(result.artifacts), list(map(_BLOB_FIELDS, result.blobs)),
        None if t is None else _TRANSITION_FIELDS(t), result.exception_type, result.exception,
        result.traceback, result.location, result.stdout, result.stderr, result.warnings,
        list(map(_CARD_FIELDS, result.cards)), result.host, result.carried,
    )  # fmt: skip
    try:
        return _MARSHAL + marshal.dumps(plain)
    except ValueError:
        import pickle

        spec, result.spec = result.spec, None  # type: ignore[assignment]
        try:
            return _PICKLE + pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            result.spec = spec


def stored_time(value: float | str) -> str:
    """A time as a TaskResult holds it (clock.py's text) from a time.time() float, which
    is what a task's own process takes (task.py says why)."""
    return value if isinstance(value, str) else stored_from_timestamp(value)


def result_from_wire(data: bytes | memoryview) -> TaskResult:
    """The TaskResult result_to_wire wrote, its spec None (the caller sets it), its times
    as text."""
    if data[:1] == _PICKLE:
        import pickle

        result = pickle.loads(data[1:])
        assert isinstance(result, TaskResult)
        for one in result.blobs:
            codec.frame_later(one)
        result.started_at = stored_time(result.started_at)
        result.finished_at = stored_time(result.finished_at)
        return result
    (version, status, started_at, finished_at, artifacts, blobs, transition, exception_type,
     exception, traceback, location, stdout, stderr, warnings, cards, host,
     carried) = marshal.loads(memoryview(data)[1:])  # fmt: skip
    assert version == _WIRE_VERSION
    blob = codec.EncodedBlob
    encoded = [blob(*fields) for fields in blobs]
    for one in encoded:
        codec.frame_later(one)  # a small value's frame, left to here by a task's process
    return TaskResult(
        None, status, stored_time(started_at), stored_time(finished_at), _from_records(artifacts),  # type: ignore[arg-type]
        encoded,
        None if transition is None else Transition(*transition), exception_type, exception,
        traceback, location, stdout, stderr, warnings, [CardRecord(*c) for c in cards], host,
        carried,
    )  # fmt: skip
