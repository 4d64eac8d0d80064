"""Run one task: build the flow instance, call the step, and turn what it set into
encoded artifacts. No database writes here: a worker (thread or process) returns a
`TaskResult`, and the runtime's single writer commits it.

Inputs are addressed by SHA (`ArtifactRecord`s), and results carry encoded blobs, so a task
can run in another process, or on another machine: `BlobAccess` is where its input values
come from and its new blobs go (the ledger, or what a remote executor shipped).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from . import codec
from .blobstore import decode_verified
from .capture import capturing
from .cards.hook import render_task_cards
from .clock import now_iso
from .current import current
from .decorators import step_decorator
from .exceptions import ArtifactError, LedgerError, MetaflowExceptionWrapper, TimeoutException
from .flowspec import FlowSpec, ForeachFrame, Inputs, TaskState, Transition
from .internals import INTERNAL_ARTIFACTS
from .ledger import Ledger, chunk_size_setting
from .preview import preview
from .records import ArtifactRecord
from .secrets_check import credential_warning
from .structs import field, replace, struct

if TYPE_CHECKING:
    import traceback

    from .executors import OutputSink

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


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

    @property
    def ok(self) -> bool:
        """The flow goes on after this task (it succeeded, or @catch caught its failure)."""
        return self.status in ("succeeded", "caught")


# -- flow classes and graphs, per process ------------------------------------------------

_FLOW_CLASSES: dict[tuple[str, str], type[FlowSpec]] = {}
_GRAPHS: dict[type, Any] = {}
_lock = threading.Lock()


def register_flow_class(cls: type[FlowSpec], module: str | None = None) -> None:
    """Make a flow class resolvable by workers in this process (and forked children), under
    its module's name or the one given (a class shipped to a remote worker)."""
    _FLOW_CLASSES[(module or cls.__module__, cls.__name__)] = cls


def flow_class(spec: TaskSpec) -> type[FlowSpec]:
    return load_flow_class(spec.flow_file, spec.flow_module, spec.class_name)


def load_flow_class(flow_file: str, flow_module: str, class_name: str) -> type[FlowSpec]:
    """The flow class, registered in this process or loaded from its file (in a fresh
    process: as module `_ledgerflow_flow`, so its `__main__` guard stays shut)."""
    cls = _FLOW_CLASSES.get((flow_module, class_name))
    if cls is not None:
        return cls
    with _lock:
        module_spec = importlib.util.spec_from_file_location("_ledgerflow_flow", flow_file)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load flow file {flow_file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules.setdefault("_ledgerflow_flow", module)
        module_spec.loader.exec_module(module)
        cls = getattr(module, class_name)
        from .configs import apply_from_environment  # the run's Config values

        apply_from_environment(cls)
        _FLOW_CLASSES[(flow_module, class_name)] = cls
        return cls


def flow_graph(cls: type) -> Any:
    graph = _GRAPHS.get(cls)
    if graph is None:
        from .graph import FlowGraph

        graph = _GRAPHS[cls] = FlowGraph(cls)
    return graph


# -- running a task ------------------------------------------------------------------------


class StdStreams:
    """The output sink of a task in a process of its own: the process's own sys.stdout and
    sys.stderr, whose file descriptors are pipes to the runtime."""

    def write(self, stream: str, text: str) -> None:
        getattr(sys, stream).write(text)


def run_task(spec: TaskSpec, output: OutputSink, own_process: bool = False,
             blobs: BlobAccess | None = None) -> TaskResult:  # fmt: skip
    """Run one task to completion and return what it produced. Never raises for user errors.

    `output` receives what the task prints. With `own_process`, the task has the process to
    itself: its prints already reach the runtime through file descriptors 1 and 2, a timeout
    interrupts it with SIGALRM, and its large blobs go into the ledger from here. `blobs` is
    where input values come from and new blobs go: the run's ledger unless given (a remote
    executor passes the values it shipped, and never opens the ledger)."""
    started = now_iso()
    pid = os.getpid()
    cls = flow_class(spec)
    graph = flow_graph(cls)
    if blobs is None:
        blobs = LedgerBlobs(spec.ledger_path, own_process, spec.preloaded)
    if isinstance(blobs, LedgerBlobs):
        spec = resolve_join_inputs(spec, blobs.ledger)
    node = graph[spec.step]
    func = getattr(cls, spec.step)
    parent_refs = {} if spec.is_join else dict(spec.inputs[0]) if spec.inputs else {}
    refs = {k: v for k, v in parent_refs.items() if k not in INTERNAL_ARTIFACTS}
    refs.update({k: v for k, v in spec.constants.items() if k not in refs})
    state = TaskState(
        step_name=spec.step,
        graph=graph,
        refs=refs,
        load=blobs.load,
        foreach_stack=list(spec.foreach_stack),
        input_item=spec.foreach_item,
        param_names=spec.param_names,
        max_num_splits=spec.max_num_splits,
    )
    flow = cls._for_task(state)
    timeout = step_decorator(func, "timeout")
    seconds = timeout.total_seconds if timeout else None  # type: ignore[attr-defined]
    error: BaseException | None = None
    with _environment(step_decorator(func, "environment")):
        try:
            args = (_join_inputs(cls, graph, spec, blobs.load),) if spec.is_join else ()
            call = _call_in_process if own_process else _call_in_thread
            call(getattr(flow, spec.step), args, spec, output, seconds)
            if state.transition is None and node.type != "end":
                raise _missing_next(spec.step)
        # The user's step failed (sys.exit too): record it, don't crash the run.
        except (Exception, SystemExit) as e:  # noqa: BLE001
            error = e
    if os.getpid() != pid:
        # The step forked and this is the child coming back from it: it must not go on as
        # the task (a second result, a second commit). Metaflow's tasks are processes too.
        os._exit(0)
    result = TaskResult(spec, "succeeded", started, "")
    result.transition = state.transition if error is None else None
    catch = step_decorator(func, "catch")
    if catch is not None:
        error = _apply_catch(catch, flow, node, spec, result, output, error)
    collect_artifacts(flow, state, spec, parent_refs, result, error, output, blobs)
    result.finished_at = now_iso()
    render_task_cards(func, spec, result, graph, blobs.chunk_size, flow)  # never raises
    return result


def _task_context(spec: TaskSpec, output: OutputSink | None) -> contextlib.ExitStack:
    """Set `current` (and, for a task sharing the process, route this thread's output to
    `output`) for the task's duration."""
    stack = contextlib.ExitStack()
    if output is not None:
        stack.enter_context(capturing(output))
    current._set(
        flow_name=spec.flow_name, run_id=spec.run_id, step_name=spec.step,
        task_id=spec.task_id, retry_count=spec.attempt, origin_run_id=spec.origin_run_id,
        username=spec.username, tags=frozenset(spec.tags), namespace=f"user:{spec.username}",
        parameter_names=sorted(spec.param_names), **_project(spec),
        ledger_path=spec.ledger_path,  # the Client API reads the run's ledger inside steps
    )  # fmt: skip
    stack.callback(current._clear)
    return stack


def _project(spec: TaskSpec) -> dict[str, Any]:
    """current.project_name/branch_name/project_flow_name/is_production for a @project flow."""
    from .decorators import project_info

    return project_info(flow_class(spec), spec.username or "")


def _call_in_process(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    spec: TaskSpec,
    output: OutputSink,
    seconds: float | None,
) -> None:
    """Call the step in a process of its own; @timeout interrupts it with SIGALRM, as
    Metaflow's does (the runtime kills the process if even that does not stop it)."""
    import signal

    def alarm(signum: int, frame: Any) -> None:
        raise _timed_out(spec, seconds or 0)

    if seconds:
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with _task_context(spec, None):
            func(*args)
    finally:
        if seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _call_in_thread(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    spec: TaskSpec,
    output: OutputSink,
    seconds: float | None,
) -> None:
    """Call the step in the run's process; with a timeout, in a watched thread of its own."""
    if not seconds:
        with _task_context(spec, output):
            func(*args)
        return
    outcome: dict[str, BaseException] = {}

    def target() -> None:
        with _task_context(spec, output):
            try:
                func(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = e

    worker = threading.Thread(target=target, name=f"ledgerflow-{spec.step}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        # Stop the step at its next Python instruction; a C call in progress (a sleep, a
        # socket read) finishes first, but its result is ignored: the task has failed.
        _raise_in_thread(worker, _TimedOut)
        worker.join(0.5)
        raise _timed_out(spec, seconds)
    if "error" in outcome:
        raise outcome["error"]


def _timed_out(spec: TaskSpec, seconds: float) -> TimeoutException:
    return TimeoutException(
        f"Step '{spec.step}' timed out after {_duration(seconds)} (@timeout); make the "
        "step faster or raise its @timeout"
    )


class _TimedOut(BaseException):
    """Raised inside a step's thread to stop it; not an Exception so user code can't catch it."""


def _raise_in_thread(thread: threading.Thread, exc: type[BaseException]) -> None:
    import ctypes

    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exc)
        )


def _duration(seconds: float) -> str:
    return f"{seconds:g} seconds" if seconds < 120 else f"{seconds / 60:g} minutes"


@contextlib.contextmanager
def _environment(deco: Any) -> Iterator[None]:
    """@environment(vars=...): set the variables while the step runs (process-wide)."""
    values = {str(k): str(v) for k, v in ((deco.attributes["vars"] or {}) if deco else {}).items()}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _apply_catch(
    catch: Any,
    flow: FlowSpec,
    node: Any,
    spec: TaskSpec,
    result: TaskResult,
    output: OutputSink,
    error: BaseException | None,
) -> BaseException | None:
    """@catch: once retries are spent, turn a failure into a 'caught' task that goes on."""
    var = catch.attributes.get("var")
    if error is None:
        if var:
            object.__setattr__(flow, var, None)
        return None
    if spec.attempt < spec.max_retries or isinstance(error, ArtifactError):
        return error  # a retry comes first; an unstorable artifact cannot be caught
    stacktrace = format_user_traceback(error)
    if catch.attributes.get("print_exception", True):
        output.write("stdout", f"@catch caught an exception from {spec.pathspec}\n")
        output.write("stdout", "".join(f">  {line}\n" for line in stacktrace.splitlines()))
    if var:
        object.__setattr__(flow, var, MetaflowExceptionWrapper(error, stacktrace))
    result.status = "caught"
    result.transition = Transition(list(node.out_funcs))
    result.exception_type = codec.type_name(error)
    result.exception = str(error)
    result.traceback = stacktrace
    return None


def _missing_next(step: str) -> Exception:
    from .exceptions import InvalidNextException

    return InvalidNextException(
        f"Step '{step}' finished without calling self.next(); call it as the last statement"
    )


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


def _join_inputs(cls: type[FlowSpec], graph: Any, spec: TaskSpec,
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


def collect_artifacts(
    flow: FlowSpec,
    state: TaskState,
    spec: TaskSpec,
    parent_refs: dict[str, ArtifactRecord],
    result: TaskResult,
    error: BaseException | None,
    output: OutputSink,
    blobs: BlobAccess,
) -> None:
    """Encode what the step set, add the internal artifacts, and fill `result`."""
    final: dict[str, ArtifactRecord] = {}
    # What came unchanged from a parent (or a join's input) is marked inherited.
    passed_on = {(name, ref.sha) for refs in spec.inputs for name, ref in refs.items()}
    if spec.step != "start":
        passed_on |= {(name, ref.sha) for name, ref in spec.constants.items()}
    for name, ref in state.refs.items():
        final[name] = ArtifactRecord(**{**ref.__dict__, "inherited": (name, ref.sha) in passed_on})
    user_values = {
        k: v
        for k, v in flow.__dict__.items()
        if not k.startswith("_") and k not in spec.param_names  # parameters are read-only
    }
    for name, value in user_values.items():
        try:
            record = _unchanged(name, value, state) or blobs.store(name, value, result)
        except Exception as e:  # noqa: BLE001 - the error is recorded for the artifact's name
            if error is not None:
                continue  # the step failed anyway: keep what can be kept
            error = ArtifactError(
                f"Step '{spec.step}' cannot store artifact '{name}': a "
                f"{codec.type_name(value)} cannot be serialized ({type(e).__name__}: {e}); "
                f"store a serializable value, or keep it private as self._{name}"
            )
            final, result.blobs = {}, []
            break
        record.inherited = (name, record.sha) in passed_on
        final[name] = record
        if not record.inherited:
            warning = credential_warning(spec.step, name, value, record.preview)
            if warning:
                warn(result, warning)
    if error is not None:
        result.status = "failed"
        result.transition = None
        result.exception_type = codec.type_name(error)
        result.exception = str(error)
        result.traceback = format_user_traceback(error)
        result.location = user_location(error)
        if isinstance(error, ArtifactError) and not final:
            result.artifacts = {}
            return
    internals = _internal_values(result)
    for name, value in internals.items():
        final[name] = blobs.store(name, value, result)
    result.artifacts = final


def _internal_values(result: TaskResult) -> dict[str, Any]:
    """Internal artifacts stored as such: only `_foreach_values` (see internals.py for the
    ones built from task columns)."""
    t = result.transition
    if t is not None and t.foreach is not None:
        return {"_foreach_values": t.foreach_values}
    return {}


def _unchanged(name: str, value: Any, state: TaskState) -> ArtifactRecord | None:
    """For a large artifact read from a parent (and so on self), its parent's record when
    it still hashes the same: unchanged, it is not compressed again."""
    ref = state.refs.get(name)
    if ref is None or ref.size < _RECHECK_OVER or codec.digest(value) != ref.sha:
        return None
    return ArtifactRecord(**{**ref.__dict__})


# Below this size, encoding again costs less than hashing first.
_RECHECK_OVER = 1024 * 1024


def encode_artifact(
    name: str, value: Any, chunk_size: int
) -> tuple[ArtifactRecord, codec.EncodedBlob]:
    """An artifact's record and its encoded blob (hashed, compressed, with its preview)."""
    blob = codec.encode_blob(value, chunk_size)
    blob.preview = preview(value)
    record = ArtifactRecord(
        name=name,
        sha=blob.sha,
        encoding=blob.encoding,
        type=codec.type_name(value),
        size=blob.raw_size,
        value=codec.scalar_value(value),
        preview=blob.preview,
    )
    return record, blob


def warn(result: TaskResult, text: str) -> None:
    """A warning about the task: stored with its stderr, shown by the runtime."""
    result.stderr += text + "\n"
    result.warnings.append(text)


# -- where input values come from and where new blobs go ---------------------------------


class BlobAccess(Protocol):
    """The seam between a task and storage: `load(sha)` gives an input's value (a fresh
    object each call), `store(name, value, result)` encodes a value the task set and either
    keeps its blob or puts it in `result.blobs` for the runtime to commit. LedgerBlobs is
    the local executors' (the run's ledger); an executor whose tasks run where the ledger is
    not (executors/dask.py) passes its own."""

    chunk_size: int

    def load(self, sha: str) -> Any: ...

    def store(self, name: str, value: Any, result: TaskResult) -> ArtifactRecord: ...


# A task in its own process writes blobs from this size on into the ledger itself, so their
# bytes are not copied once more through a pipe into the runtime (which would then hold them).
WRITE_IN_TASK_FROM = 256 * 1024


class LedgerBlobs:
    """Inputs read from the run's ledger. A task in a process of its own opens the file as
    a task does (Ledger.for_task) and commits its large blobs itself; a task in the run's
    process shares the run's Ledger and hands every new blob to the runtime."""

    def __init__(self, ledger_path: str, own_process: bool,
                 preloaded: dict[str, tuple[str, bytes]] | None = None):  # fmt: skip
        self.ledger_path = ledger_path
        self.own_process = own_process
        # Small inputs the runtime sent with the spec (bytes it had verified): a task whose
        # inputs are all here never opens the ledger.
        self.preloaded = preloaded or {}
        self._ledger: Ledger | None = None
        self.chunk_size = chunk_size_setting()

    @property
    def ledger(self) -> Ledger:
        """The run's ledger, opened on first need (a task whose inputs all came with its
        spec never opens it: about 90 page faults fewer in that phase)."""
        if self._ledger is None:
            path = self.ledger_path
            self._ledger = Ledger.for_task(path) if self.own_process else Ledger.open(path)
        return self._ledger

    def load(self, sha: str) -> Any:
        sent = self.preloaded.get(sha)
        if sent is not None:
            return decode_verified(sha, sent[0], sent[1], None, self.ledger_path)
        return self.ledger.load(sha)

    def store(self, name: str, value: Any, result: TaskResult) -> ArtifactRecord:
        record, blob = encode_artifact(name, value, self.chunk_size)
        ledger = self.ledger
        if self.own_process:
            if blob.raw_size < WRITE_IN_TASK_FROM:
                result.blobs.append(blob)
                return record
            try:
                # A content-addressed row: the runtime's task commit then references it.
                ledger.store_blobs([blob])
            except LedgerError:
                # Full disk, a locked or vanished file: the blob goes with the result, and
                # the runtime's own write meets the same error and stops the run with one
                # clear line.
                result.blobs.append(blob)
            return record
        if ledger.knows_blob(blob.sha):
            blob.discard()  # stored already (deduplicated)
        else:
            result.blobs.append(blob)
        if blob.raw is not None:
            ledger.cache.put(blob.sha, blob.encoding, blob.raw)
        return record


def _user_frames(error: BaseException) -> list[traceback.FrameSummary]:
    import traceback  # only failures need it

    return [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR + os.sep)
    ]


def user_location(error: BaseException) -> str | None:
    """'flow.py:12' of the user's line that led to the error, if any."""
    frames = _user_frames(error)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def format_user_traceback(error: BaseException) -> str:
    """The traceback of the user's code, without ledgerflow's own frames."""
    import traceback

    frames = _user_frames(error)
    lines = (
        ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    )
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines)
