"""Run one task: build the flow instance, call the step, and turn what it set into
encoded artifacts. No database writes here: a worker (thread or process) returns a
`TaskResult`, and the runtime's single writer commits it.

Inputs are addressed by SHA (`ArtifactRecord`s), and results carry encoded blobs, so a task
can run in another process, or on another machine: `BlobAccess` is where its input values
come from and its new blobs go (the ledger, or what a remote executor shipped).

The task's other parts live beside it (owner of all: taskpath): taskspec.py (the spec and
result records), flowclasses.py (flow classes and graphs per process), joins.py (a join's
inputs), taskblobs.py (blob access, encoding), taskoutput.py (artifacts collected, user
tracebacks). Their public names are importable from here too, as before the split.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import codec
from .attempts import step_function, wait_before_attempt
from .capture import capturing
from .clock import now_iso
from .current import current
from .decorators import project_info
from .exceptions import ArtifactError, MetaflowExceptionWrapper, TimeoutException
from .flowclasses import flow_class, load_flow_class, register_flow_class
from .flowspec import FlowSpec, TaskState, Transition, new_task_state
from .graph import flow_graph
from .internals import INTERNAL_ARTIFACTS
from .joins import join_inputs, resolve_join_inputs
from .records import ArtifactRecord
from .stepenv import variables_set
from .taskblobs import WRITE_IN_TASK_FROM, BlobAccess, LedgerBlobs, encode_artifact
from .taskcards import cards_to_render, render_task_cards
from .taskoutput import collect_artifacts, format_user_traceback, user_location, warn
from .taskspec import TaskResult, TaskSpec, new_result

if TYPE_CHECKING:
    from .capture import OutputSink

__all__ = [  # what other modules import from here (the split kept these names)
    "WRITE_IN_TASK_FROM", "BlobAccess", "LedgerBlobs", "StdStreams", "TaskResult", "TaskSpec",
    "collect_artifacts", "encode_artifact", "flow_class", "flow_graph", "format_user_traceback",
    "load_flow_class", "register_flow_class", "resolve_join_inputs", "run_task",
    "user_location", "warn",
]  # fmt: skip

# -- running a task ------------------------------------------------------------------------


class StdStreams:
    """The output sink of a task in a process of its own: the process's own sys.stdout and
    sys.stderr, whose file descriptors are pipes to the runtime."""

    def write(self, stream: str, text: str) -> None:
        getattr(sys, stream).write(text)


def run_task(spec: TaskSpec, output: OutputSink, own_process: bool = False,
             blobs: BlobAccess | None = None,
             _stand_in: Callable[[FlowSpec], Callable[..., Any]] | None = None) -> TaskResult:  # fmt: skip
    """Run one task to completion and return what it produced. Never raises for user errors.

    `output` receives what the task prints. With `own_process`, the task has the process to
    itself: its prints already reach the runtime through file descriptors 1 and 2, a timeout
    interrupts it with SIGALRM, and its large blobs go into the ledger from here. `blobs` is
    where input values come from and new blobs go: the run's ledger unless given (a remote
    executor passes the values it shipped, and never opens the ledger).

    `_stand_in` (the fork server's warm-up, forkserver.py) gives the function called instead
    of the step, and leaves cards out: nothing of the user's runs."""
    if spec.attempt:
        wait_before_attempt(spec)  # a retry's pause (attempts.py)
    # A task's own process takes the times as time.time() floats, which the runtime turns
    # into text (taskspec.result_from_wire): formatting a datetime cost each task ~0.1 ms
    # and ~35 page faults (measured). Its cards, if any, get text (render_task_cards).
    stamp: Callable[[], Any] = time.time if own_process else now_iso
    started = stamp()
    pid = os.getpid()
    cls = flow_class(spec)
    graph = flow_graph(cls)
    if blobs is None:
        blobs = LedgerBlobs(spec.ledger_path, own_process, spec.preloaded)
    if spec.is_join and isinstance(blobs, LedgerBlobs):
        spec = resolve_join_inputs(spec, blobs.ledger)
    node = graph.nodes[spec.step]
    func = getattr(cls, spec.step)
    # The step's decorators by name, in one pass (a task in a process of its own pays for
    # every function it runs and object it touches: plain loops, no comprehensions, here).
    decorators: dict[str, Any] = {}
    for deco in getattr(func, "decorators", ()):
        decorators.setdefault(deco.name, deco)  # the first of a name, as step_decorator
    parent_refs = spec.inputs[0] if spec.inputs and not spec.is_join else {}
    state = _task_state(spec, graph, parent_refs, blobs)
    flow = cls._for_task(state)
    seconds = spec.timeout
    error: BaseException | None = None
    environment = decorators.get("environment")
    restore = _set_environment(environment) if environment is not None else None
    try:
        args = (join_inputs(cls, graph, spec, blobs),) if spec.is_join else ()
        call = _call_in_process if own_process else _call_in_thread
        if _stand_in is not None:
            step = _stand_in(flow)
        elif spec.attempt <= spec.max_retries and "secrets" not in decorators:
            step = getattr(flow, spec.step)  # what step_function gives such an attempt
        else:
            step = step_function(flow, spec)
        call(step, args, spec, output, seconds)
        if state.transition is None and node.type != "end":
            raise _missing_next(spec.step)
    # The user's step failed (sys.exit too): record it, don't crash the run.
    except (Exception, SystemExit) as e:  # noqa: BLE001
        error = e
    finally:
        if restore is not None:
            restore.close()
    if os.getpid() != pid:
        # The step forked and this is the child coming back from it: it must not go on as
        # the task (a second result, a second commit). Metaflow's tasks are processes too.
        os._exit(0)
    result = new_result(spec, "succeeded", started, "", {}, [],
                        state.transition if error is None else None)  # fmt: skip
    catch = decorators.get("catch")
    if catch is not None:
        error = _apply_catch(catch, flow, node, spec, result, output, error)
    # A task in a process of its own sends back what it passed on unchanged as names only;
    # not a join (its inputs were resolved here: it compacts its result as it is sent), nor
    # a step with cards (they list the whole map).
    carry = own_process and not spec.is_join and "card" not in decorators
    collect_artifacts(flow, state, spec, parent_refs, result, error, output, blobs, carry)
    result.finished_at = stamp()
    # (cards_to_render's answer, without its call when neither holds: a function less to run)
    cards = "card" in decorators or _CARD_COLLECTOR in sys.modules
    if _stand_in is None and cards and cards_to_render(decorators):
        render_task_cards(func, spec, result, graph, blobs.chunk_size, flow)  # never raises
    return result


def _task_state(spec: TaskSpec, graph: Any, parent_refs: dict[str, ArtifactRecord],
                blobs: BlobAccess) -> TaskState:  # fmt: skip
    """The flow instance's state: the parent's artifacts (not the internal ones), then the
    run's constants the parent did not pass on."""
    refs = {}
    for name, ref in parent_refs.items():
        if name not in INTERNAL_ARTIFACTS:
            refs[name] = ref
    for name, ref in spec.constants.items():
        if name not in refs:
            refs[name] = ref
    return new_task_state(
        spec.step,
        graph,
        refs,
        blobs.load,
        list(spec.foreach_stack),
        spec.param_names,
        spec.max_num_splits,
        spec.foreach_item,
    )


@contextlib.contextmanager
def _task_context(spec: TaskSpec, output: OutputSink) -> Iterator[None]:
    """For a task sharing the process: this thread's output routed to `output`, and
    `current` set, for the task's duration."""
    with capturing(output):
        _set_current(spec)
        try:
            yield
        finally:
            current._clear()


def _set_current(spec: TaskSpec) -> None:
    """`current` for the task; the caller clears it when the step returns."""
    current._set(**_current_values(spec))


def _current_values(spec: TaskSpec) -> dict[str, Any]:
    return dict(
        flow_name=spec.flow_name, run_id=spec.run_id, step_name=spec.step,
        task_id=spec.task_id, retry_count=spec.attempt, origin_run_id=spec.origin_run_id,
        username=spec.username, tags=frozenset(spec.tags), namespace=f"user:{spec.username}",
        parameter_names=sorted(spec.param_names), **_project(spec),
        ledger_path=spec.ledger_path,  # the Client API reads the run's ledger inside steps
    )  # fmt: skip


def _project(spec: TaskSpec) -> dict[str, Any]:
    """current.project_name/branch_name/project_flow_name/is_production for a @project flow."""
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
    if seconds:
        _alarm_after(spec, seconds)
    # (@project asked once per class: the fork server's warm-up asks first, so its tasks
    # only read the answer; a class without flow decorators would otherwise raise and drop
    # an AttributeError in each)
    cls = flow_class(spec)
    project = _PROJECT_FLOWS.get(cls)
    if project is None:
        project = _PROJECT_FLOWS[cls] = "project" in getattr(cls, "_flow_decorators", {})
    if project:
        _set_current(spec)  # its fields read the environment as the step starts
    else:
        current._set_later(_current_values, spec)  # built if the step reads it
    try:
        func(*args)
    finally:
        current._clear()
        if seconds:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)


_PROJECT_FLOWS: dict[type, bool] = {}  # flow class -> has @project (_call_in_process)
_CARD_COLLECTOR = "ledgerflow.cards.collector"  # loaded by current.card only (taskcards.py)


def _alarm_after(spec: TaskSpec, seconds: float) -> None:
    import signal

    def alarm(signum: int, frame: Any) -> None:
        raise _timed_out(spec, seconds)

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)


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


def _set_environment(deco: Any) -> contextlib.ExitStack:
    """@environment(vars=...): the variables set while the step runs (process-wide) until
    the returned stack is closed. Plain calls, not a `with`: most steps have no @environment,
    and a task in a process of its own should not run contextlib's code for nothing."""
    values = {str(k): str(v) for k, v in (deco.attributes["vars"] or {}).items()}
    stack = contextlib.ExitStack()
    stack.enter_context(variables_set(values))
    return stack


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
        output.write("stdout", f"@catch caught an exception from {flow}\n")
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
