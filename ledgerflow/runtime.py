"""Drive a run: walk the graph, hand ready tasks to an executor, and write what happens
from this (the only writing) thread: a task's row when it starts, its output as it comes
(every LOG_FLUSH_EVERY seconds or LOG_FLUSH_BYTES), and its outcome when it ends. The rows
of the tasks starting share one transaction with the outcomes of the tasks that ended
since the last one (their parents among them); outcomes alone wait a little for company
(Runtime._save says how long), and freed slots wait a little for each other (START_HOLD).
The loop is this one thread: it asks the executor what completed (`Executor.wait`), and
with the default executor that call serves the tasks' pipes and sockets here too.

Bookkeeping per finished task: its artifact map (what its children inherit), its foreach
stack (Metaflow's `_foreach_stack`) and its split stack — one frame per open split, static
or foreach — which tells a join which sibling tasks it waits for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import attempts, codec, writes
from .blobstore import RawCache
from .capture import real_stream
from .clock import now_iso
from .current import get_username
from .decorators import project_tags, step_decorator
from .exceptions import ExecutorError, LedgerError, LintError, RunTerminated
from .executors import Executor, ResultFuture
from .flowclasses import register_flow_class
from .flowspec import ForeachFrame, Transition, stored_constants
from .graph import flow_graph
from .internals import transition_record
from .ledger import Ledger
from .liveness import HEARTBEAT_EVERY
from .parameters import flow_parameters
from .progress import Progress
from .records import ArtifactRecord, TaskRecord
from .sourcecode import class_file
from .structs import field, replace, struct
from .taskblobs import encode_artifact
from .tasklog import LOG_FLUSH_EVERY, TaskLog
from .taskreuse import TaskKeys, inputs_digest, outputs_digest
from .taskspec import TaskResult, TaskSpec
from .version import __version__

if TYPE_CHECKING:
    from .resume import Origin, OriginTask
    from .taskreuse import ReuseKey


def _resume() -> Any:
    from . import resume  # only `resume` runs clone tasks

    return resume


DEFAULT_MAX_NUM_SPLITS = 100  # as Metaflow's --max-num-splits
PRELOAD_BUDGET = 256 * 1024  # bytes of input values sent with a task's spec
PRELOAD_CACHE = 8 * 1024 * 1024  # bytes of recent small values the runtime keeps for that
# Outcomes of ended tasks wait for the next commit (Runtime._save) at most this many
# seconds, or this many tasks, or bytes of their values, whichever comes first.
SAVE_EVERY = 0.1
SAVE_MAX = 256
SAVE_BYTES = 8 * 1024 * 1024
# A task's row is committed before it starts, and a commit costs more than the rows in it
# (foreach 1,000 at 16 workers: ~290 commits of ~3 rows cost 0.23 ms of CPU a task, ~125
# of ~8 rows ~0.18): while more than half of the slots are busy, freed slots are refilled
# together, once a quarter of them are free or the first has waited START_HOLD seconds
# (the tasks still running keep the cores busy meanwhile; a long task's slot idles at most
# that long). Refilling at half measured no cheaper than at a quarter, and keeps fewer
# tasks in flight.
START_HOLD = 0.02


def new_run_id() -> str:
    """Microseconds since the epoch plus 6 random digits: sorts by time, and two ledgers
    merged together do not collide."""
    return f"{time.time_ns() // 1000}{int.from_bytes(os.urandom(4), 'big') % 10**6:06d}"


def _check_decorators(graph: Any, flow_cls: type) -> None:
    """Decorator combinations Metaflow refuses before running, refused here too."""
    for node in graph:
        if step_decorator(getattr(flow_cls, node.name), "catch") is None:
            continue
        if node.type in ("foreach", "split-switch"):
            kind = "foreach split" if node.type == "foreach" else "switch"
            raise LintError(
                f"@catch is not supported on {kind} step '{node.name}'; move the work "
                "that may fail into a step of its own and put @catch there",
                node.func_lineno,
                node.source_file,
            )


@struct(frozen=True)
class SplitFrame:
    split_pk: int  # the task that split
    index: int
    count: int
    is_foreach: bool


@struct
class Done:
    """A committed task, as its children need it."""

    pk: int
    step: str
    artifacts: dict[str, ArtifactRecord]
    foreach_stack: list[ForeachFrame]
    splits: tuple[SplitFrame, ...]
    foreach_item: tuple[str, bytes] | None = None  # its innermost foreach item, encoded
    outputs: bytes = b""  # the digest of its artifacts' names and SHAs (taskreuse.py)


@struct
class Pending:
    spec: TaskSpec
    parent_pks: list[int]
    splits: tuple[SplitFrame, ...]
    pk: int | None = None  # the task row, once written
    log: TaskLog | None = None  # its output, while it runs
    key: ReuseKey | None = None  # what `run --reuse` matches it by (taskreuse.py)
    inputs: bytes = b""  # the digest of what its parents passed it (taskreuse.py)


@struct
class _Arrivals:
    """The task pks of a join's inputs as they end, in split order."""

    pks: array[int]
    outputs: bytearray  # each input's outputs digest, 32 bytes apiece, in split order
    count: int = 0


class _Template:
    """Instances of a struct class made from a template instance: its fields copied, the
    given ones changed. A TaskSpec or TaskRecord built by keyword costs ~10 us (the struct
    checks every name); a copy ~2 us, and the runtime makes three of them a task. The
    template comes from the class's own constructor, so it has every field, defaults and
    all; each caller gives every field that holds a fresh list or dict (a template's would
    be shared)."""

    __slots__ = ("cls", "fields")

    def __init__(self, instance: Any):
        self.cls: Any = type(instance)
        self.fields: dict[str, Any] = instance.__dict__

    def make(self, **changes: Any) -> Any:
        assert changes.keys() <= self.fields.keys(), set(changes) - set(self.fields)
        made = object.__new__(self.cls)
        fields = made.__dict__
        fields.update(self.fields)  # (in field order, as the constructor leaves them)
        fields.update(changes)
        return made


@struct
class RunOutcome:
    run_id: str
    status: str  # succeeded | failed
    failed_tasks: list[str] = field(factory=list)


class Runtime:
    def __init__(
        self,
        flow_cls: type,
        ledger: Ledger,
        params: dict[str, Any],
        *,
        executor: Executor | None = None,
        tags: list[str] | None = None,
        max_num_splits: int = DEFAULT_MAX_NUM_SPLITS,
        quiet: bool = False,
        verbose: bool = False,
        echo_logs: bool = True,
        on_run_id: Callable[[str], None] | None = None,
        origin: Origin | None = None,
        rerun_steps: set[str] | None = None,
        reuse: bool = False,
    ):
        self.flow_cls = flow_cls
        self.flow_name = flow_cls.__name__
        self.ledger = ledger
        self.params = params
        if executor is None:
            from .executors.processes import ProcessExecutor

            executor = ProcessExecutor()
        self.executor = executor
        self.tags = list(tags or [])
        self.max_num_splits = max_num_splits
        self.quiet = quiet
        self.progress = Progress(real_stream("stdout"), quiet=quiet, verbose=verbose)
        self.echo_logs = echo_logs and not quiet
        self.on_run_id = on_run_id
        self.graph = flow_graph(flow_cls)
        _check_decorators(self.graph, flow_cls)
        self.flow_file = os.path.abspath(class_file(flow_cls) or sys.argv[0])
        self.username = get_username()
        self._next_task_id = 1
        self._waiting_joins: dict[tuple[Any, ...], _Arrivals] = {}
        self.failed: list[str] = []
        # resume: the run we clone from, the steps to run again, and what got cloned
        self.origin = origin
        self.rerun_steps = rerun_steps or set()
        self._cloned_pks: set[int] = set()
        self._clone_of: dict[str, OriginTask] = {}
        # run --reuse: every task gets a key (so a later run can reuse it); with `reuse`,
        # a task whose key the ledger has seen is cloned instead of run
        self.reuse = reuse
        self.keys = TaskKeys(flow_cls, [node.name for node in self.graph], ledger)
        self._reused: set[str] = set()
        self._running: dict[ResultFuture, Pending] = {}
        # The tasks that ended since the last commit (see _save), their values' bytes, and
        # since when.
        self._unsaved: list[tuple[Pending, TaskResult]] = []
        self._unsaved_bytes = 0
        self._since = time.monotonic()
        self._last_beat = time.monotonic()
        self._last_flush = time.monotonic()
        self._log_full = False  # a task's unsaved output reached LOG_FLUSH_BYTES
        self._freed_at: float | None = None  # since when free slots wait (_hold)
        # The bytes of recent small values, sent with the specs of the tasks that read them
        # (bounded: a wide foreach must not grow the runtime).
        self._recent = RawCache(max_bytes=PRELOAD_CACHE, max_item=PRELOAD_BUDGET)
        self._settings: dict[str, tuple[int, float | None]] = {}  # step -> _step_settings
        self._joins_follow: dict[str, bool] = {}  # step -> _only_joins_follow
        self._ledger_path = str(ledger.path)  # (what every spec carries, made once)
        self._param_names = frozenset(params)
        self._spec_template: _Template | None = None  # (made by the first _spec)
        self._record_template = _Template(TaskRecord(0, "", "", "", "", None))

    # -- set-up ---------------------------------------------------------------------------

    def _constants(self) -> tuple[dict[str, ArtifactRecord], list[codec.EncodedBlob]]:
        """Parameters and `name`: encoded once, referenced by every task."""
        values: dict[str, Any] = {**stored_constants(self.flow_cls), "name": self.flow_name}
        param_names = [name for name, _ in flow_parameters(self.flow_cls)]
        records: dict[str, ArtifactRecord] = {}
        if self.origin is not None and self.origin.params:
            # A resumed run keeps the origin's parameter values, blobs and all (an origin
            # stopped before start finished has none: its recorded values come as params).
            records.update({n: replace(r, inherited=False)
                            for n, r in self.origin.params.items()})  # fmt: skip
        else:
            values.update(self.params)
        self.graph_info = self.graph.to_info(param_names)
        blobs = []
        for name, value in values.items():
            records[name], blob = encode_artifact(name, value, self.ledger.chunk_size)
            blobs.append(blob)
            self._remember(blob)
        return records, blobs

    def _remember(self, blob: codec.EncodedBlob) -> None:
        """Keep a small value's bytes at hand, to send with the specs of tasks that read it."""
        if blob.raw is not None and not self.executor.in_process:
            self._recent.put(blob.sha, blob.encoding, blob.raw)

    def _preloaded(self, inputs: list[dict[str, ArtifactRecord]],
                   skip: str | None = None) -> dict[str, tuple[str, bytes]]:  # fmt: skip
        """The bytes of a task's small inputs, as far as the runtime has them, within
        PRELOAD_BUDGET: a task in a process of its own then reads them without opening the
        ledger (a connection costs a task about 1.5 ms and a third of its page faults).
        `skip` is the foreach list whose item the task gets on its own: sending the whole
        list to each of its tasks would cost each task in proportion to the list; so would
        `_foreach_values` (the items' reprs), which children inherit but seldom read."""
        if self.executor.in_process:
            return {}
        found: dict[str, tuple[str, bytes]] = {}
        budget = PRELOAD_BUDGET
        for refs in (*inputs, self.constants):
            for name, ref in refs.items():
                if ref.sha in found or ref.size > budget or name in (skip, "_foreach_values"):
                    continue
                cached = self._recent.get(ref.sha)
                if cached is not None:
                    found[ref.sha] = cached
                    budget -= len(cached[1])
        return found

    def _only_joins_follow(self, step: str) -> bool:
        found = self._joins_follow.get(step)
        if found is None:
            targets = self.graph[step].out_funcs
            found = self._joins_follow[step] = bool(targets) and all(
                self.graph[t].type == "join" for t in targets)  # fmt: skip
        return found

    def _system_tags(self) -> list[str]:
        return [
            f"user:{self.username}",
            "runtime:dev",
            f"python_version:{codec.PYTHON_VERSION}",
            f"ledgerflow_version:{__version__}",
            *project_tags(self.flow_cls, self.username),  # project:, project_branch:
        ]

    # -- the run --------------------------------------------------------------------------

    def run(self) -> RunOutcome:
        register_flow_class(self.flow_cls)
        constants, blobs = self._constants()
        self.run_id = new_run_id()
        try:
            with open(self.flow_file, encoding="utf-8") as f:
                code: str | None = f.read()
        except OSError:
            code = None
        self.run_pk = writes.create_run(
            self.ledger,
            self.flow_name,
            self.run_id,
            params=self.params,
            user=self.username,
            code=code,
            script_name=os.path.basename(self.flow_file),
            tags=self.tags,
            system_tags=self._system_tags(),
            origin_run_id=self.origin.run_id if self.origin else None,
            ledgerflow_version=__version__,
            blobs=blobs,
            graph_info=self.graph_info,
        )
        self.constants = constants
        if self.on_run_id:
            self.on_run_id(self.run_id)
        self._say(f"Workflow starting (run-id {self.run_id}):")
        try:
            with _sigterm_interrupts():
                return self._run_loop()
        finally:
            # Copying the last big commits into the file ends with the run, not after it.
            self.ledger.checkpointer.finish()

    def _run_loop(self) -> RunOutcome:
        status = "failed"
        try:
            status = self._loop()
        except KeyboardInterrupt as e:
            # Ctrl-C or SIGTERM: stop the running tasks, record them as interrupted with
            # their output (and what ended before, if not committed yet), mark the run failed,
            # and let the caller exit (130, or 143 for SIGTERM).
            with _sigterm_interrupts(ignore=True), contextlib.suppress(KeyboardInterrupt):
                self.executor.interrupt()
            self.executor.shutdown(wait=False)
            try:
                self._record_interrupted(isinstance(e, RunTerminated))
                writes.finish_run(self.ledger, self.run_pk, "failed")
                self._say("Interrupted: the run is marked failed; `resume` continues it.")
            except LedgerError:
                # Cannot say so in the ledger: the next open marks the run crashed. Still
                # leave as Ctrl-C asks (exit 130), not as a ledger error.
                pass
            raise
        except (LedgerError, ExecutorError):
            # The ledger refused a write (disk full, file deleted...), or the executor cannot
            # run tasks any more (its fork server died): stop, and try to say so in the
            # ledger; if even that fails, the next open marks the run crashed.
            self.executor.shutdown(wait=False)
            with contextlib.suppress(Exception):
                self._write_what_is_left()
            with contextlib.suppress(Exception):
                writes.finish_run(self.ledger, self.run_pk, "failed")
            raise
        self.executor.shutdown(wait=True)
        writes.finish_run(self.ledger, self.run_pk, status)
        self.progress.run_done()
        if status == "succeeded":
            self._say("Done!")
        else:
            self._say("Workflow failed.")
        return RunOutcome(self.run_id, status, self.failed)

    def _loop(self) -> str:
        # What may start, in order: a Pending, or the lazy children of a foreach (a wide
        # foreach makes each child's spec only when a slot frees up, so the runtime does not
        # hold 10,000 specs at once). Everything in it has its parents committed.
        ready: deque[Pending | Iterator[Pending]] = deque(
            [
                Pending(
                    self._spec("start", [], [], ()),
                    [],
                    (),
                    inputs=inputs_digest([outputs_digest(self.constants)]),
                )
            ]
        )
        running = self._running
        self._end_ok = False
        while True:
            starting: list[Pending] = []
            clones: list[tuple[Pending, TaskResult]] = []
            slots = self.executor.max_workers - len(running)
            hold = self._hold(slots, len(running)) if ready else 0.0
            if hold:
                slots = 0
            while ready and not self.failed and len(starting) < slots:
                taken = _take(ready)
                if taken is None:
                    continue
                pending = taken
                clone = self._clone(pending)
                if clone is not None:
                    clones.append((pending, clone))
                else:
                    starting.append(pending)
            due = self._save_due(last=not (running or starting))
            if starting or clones or due:
                # A task's row is committed before it starts (a step may read its own task
                # through `current.task`), and after its parents' outcomes.
                self._save(clones, starting, outcomes=due or bool(clones) or self._needed(starting))
            for pending, result in clones:
                self._settle(pending, result, ready)
            for pending in starting:
                self._launch(pending)
            if clones:
                continue  # (resume) what the clones unblock starts at once
            if not running:
                break
            timeout = min(HEARTBEAT_EVERY, LOG_FLUSH_EVERY)
            if self._unsaved:
                timeout = min(timeout, max(0.0, self._since + SAVE_EVERY - time.monotonic()))
            if hold:
                timeout = min(timeout, hold)
            done = self.executor.wait(timeout)
            if time.monotonic() - self._last_beat >= HEARTBEAT_EVERY:
                writes.heartbeat(self.ledger, self.run_pk)
                self._last_beat = time.monotonic()
            ended = [(running.pop(f), f.result()) for f in done if f in running]
            # What the ended tasks unblock is scheduled before their outcomes are written,
            # so the rows of the tasks starting next share that transaction.
            ended.sort(key=lambda item: (int(item[0].spec.task_id), item[0].spec.attempt))
            for pending, result in ended:
                self._ended(pending, result, ready)
        return "succeeded" if self._end_ok and not self.failed else "failed"

    # -- writing what happened --------------------------------------------------------------
    #
    # A task's row ('running') is committed before it starts, in one transaction with the
    # rows of the other tasks starting then and running tasks' output that is due. The
    # outcomes of the tasks that ended since the last commit go with it when a starting task
    # is a child of one of them (or one failed: its retry or the run's end follows); else
    # they wait, at most SAVE_EVERY seconds, SAVE_MAX tasks or SAVE_BYTES of values, for
    # the output's own flush, or for the run's end. A commit with outcomes costs more than
    # its rows (artifacts, their search index, blobs, logs): a foreach's tasks, which need
    # none of their siblings', start with a small commit each, and their outcomes are
    # written a few dozen at a time. The terminal hears of each task as it ends.

    def _launch(self, pending: Pending) -> None:
        spec = pending.spec
        assert pending.log is not None  # given in _save
        self.progress.task_started(spec.step, _prefix(spec))
        self._running[self.executor.start(spec, pending.log)] = pending

    def _ended(self, pending: Pending, result: TaskResult,
               ready: deque[Pending | Iterator[Pending]]) -> None:  # fmt: skip
        """A task's result came: said now and what follows it scheduled; written with the
        next commit."""
        if not self._only_joins_follow(pending.spec.step):  # joins read the ledger
            for blob in result.blobs:
                self._remember(blob)  # before its children's specs are made
        self._report(result)
        if pending.log is not None:
            pending.log.close()  # the rest of an unfinished last line, as it ends
        if not self._unsaved:
            self._since = time.monotonic()
        self._unsaved.append((pending, result))
        self._unsaved_bytes += sum(blob.stored_size for blob in result.blobs)
        self._settle(pending, result, ready)

    def _hold(self, slots: int, running: int) -> float:
        """How long to keep `slots` free slots unfilled (0: fill them now; START_HOLD)."""
        workers = self.executor.max_workers
        if slots <= 0 or slots * 4 >= workers or running * 2 <= workers:
            self._freed_at = None
            return 0.0
        now = time.monotonic()
        if self._freed_at is None:
            self._freed_at = now
        left = self._freed_at + START_HOLD - now
        if left <= 0:
            self._freed_at = None
            return 0.0
        return left

    def _save_due(self, last: bool) -> bool:
        """Whether the ended tasks' outcomes (or the output) are to be committed now, though
        no task may need them (see above); `last`: nothing runs or starts."""
        if not self._unsaved:
            return self._logs_due()
        return (
            last
            or time.monotonic() - self._since >= SAVE_EVERY
            or len(self._unsaved) >= SAVE_MAX
            or self._unsaved_bytes >= SAVE_BYTES
            or self._logs_due()
        )

    def _logs_due(self) -> bool:
        return (time.monotonic() - self._last_flush >= LOG_FLUSH_EVERY
                or self._log_full)  # fmt: skip

    def _needed(self, starting: list[Pending]) -> bool:
        """Whether the outcomes not committed yet must go with these tasks' rows: one of
        them is a starting task's parent, or failed."""
        if not self._unsaved:
            return False
        if not all(result.ok for _, result in self._unsaved):
            return True
        ended = {pending.pk for pending, _ in self._unsaved}
        return any(pk in ended for pending in starting for pk in pending.parent_pks)

    def _save(self, clones: list[tuple[Pending, TaskResult]], starting: list[Pending],
              outcomes: bool = True) -> None:  # fmt: skip
        """One transaction: the tasks `resume` cloned, the rows of the tasks about to
        start, running tasks' output that is due, and with `outcomes` those of the tasks
        that ended since the last one."""
        for pending in starting:
            pending.log = TaskLog(_prefix(pending.spec), self.echo_logs, self._on_log_full)
        ended = self._unsaved if outcomes else []
        records = [self._record(p, r) for p, r in ended + clones]
        now = now_iso()  # they start together: their rows are committed at one instant
        records += [self._started(p, now) for p in starting]
        logs = self._due_logs()
        if not (records or any(text for _, _, text in logs)):
            return
        pks = writes.commit_tasks(self.ledger, records, logs)
        if outcomes:
            self._unsaved, self._unsaved_bytes = [], 0
        new = pks[len(ended) :]
        for (pending, _), pk in zip(clones, new):
            pending.pk = pk
            self._cloned_pks.add(pk)
        for pending, pk in zip(starting, new[len(clones) :]):
            pending.pk = pk

    def _settle(self, pending: Pending, result: TaskResult,
                ready: deque[Pending | Iterator[Pending]]) -> None:  # fmt: skip
        """Schedule what follows an ended task: its children, its retry, or (when it failed
        for good) nothing more. (Its children start once its outcome is committed.)"""
        assert pending.pk is not None
        if pending.spec.task_id in self._clone_of and pending.spec.attempt == 0:
            self._report(result)  # a clone: said once committed
        if not result.ok:
            retry = self._retry(pending, result)
            if retry is not None:
                ready.appendleft(retry)
            else:
                self.failed.append(pending.spec.pathspec)
            return
        if pending.spec.step == "end":
            self._end_ok = True
            return
        spec = pending.spec
        done = Done(pending.pk, spec.step, result.artifacts, list(spec.foreach_stack),
                    pending.splits, spec.foreach_item, outputs_digest(result.artifacts))  # fmt: skip
        transition = result.transition
        assert transition is not None
        if transition.foreach is not None:
            ready.append(self._foreach_children(done, transition))
        else:
            ready.extend(self._children(done, transition))

    def _on_log_full(self) -> None:
        """A running task's unsaved output reached LOG_FLUSH_BYTES: wake the loop."""
        if not self._log_full:  # else a wake-up is pending
            self._log_full = True
            self.executor.wake()

    def _due_logs(self) -> list[tuple[int, str, str]]:
        """Running tasks' output not in the ledger yet, if it is time to write it (a task
        whose row is not written yet keeps its output until the next time)."""
        if not self._logs_due():
            return []
        self._last_flush = time.monotonic()
        self._log_full = False
        chunks = []
        for pending in self._running.values():
            if pending.log is not None and pending.pk is not None:
                out, err = pending.log.take()
                chunks += [(pending.pk, "stdout", out), (pending.pk, "stderr", err)]
        return chunks

    def _started(self, pending: Pending, now: str) -> TaskRecord:
        spec = pending.spec
        return self._record_template.make(  # type: ignore[no-any-return]
            run_pk=self.run_pk,
            step=spec.step,
            task_id=spec.task_id,
            status="running",
            started_at=now,
            finished_at=None,
            attempt=spec.attempt,
            foreach_index=spec.foreach_stack[-1].index if spec.foreach_stack else None,
            foreach_stack=[list(f) for f in spec.foreach_stack],
            parent_pks=pending.parent_pks,
            artifacts=[],
            blobs=[],
            cards=[],
        )

    def _record_interrupted(self, terminated: bool) -> None:
        """Ctrl-C or SIGTERM: the outcomes not committed yet, and the running tasks as
        interrupted (unless one finished meanwhile: kept whole)."""
        records = [self._record(p, r) for p, r in self._unsaved]
        now = now_iso()
        why = "stopped by SIGTERM" if terminated else "interrupted by the user (Ctrl-C)"
        for future, pending in self._running.items():
            spec = pending.spec
            result = TaskResult(spec, "interrupted", now, now, exception_type="KeyboardInterrupt",
                                exception=why)  # fmt: skip
            if future.done() and not future.cancelled() and future.exception() is None:
                done = future.result()
                if done.ok:
                    result = done  # it finished meanwhile: keep it whole
            records.append(self._record(pending, result))
        if records:
            writes.record_tasks(self.ledger, records)

    def _write_what_is_left(self) -> None:
        """The run stops on an error: write the outcomes not committed yet, if the ledger
        still can (the run is then marked failed, and its running tasks crashed)."""
        if self._unsaved:
            writes.record_tasks(self.ledger, [self._record(p, r) for p, r in self._unsaved])

    def _clone(self, pending: Pending) -> TaskResult | None:
        """resume: the origin's result for this task, when it can be reused as is; with
        --reuse, the result of an earlier task with the same key."""
        spec = pending.spec
        if spec.attempt > 0:
            return None
        pending.key = self.keys.key(spec, pending.inputs)
        candidate = None
        if self.origin is not None:
            candidate = self.origin.take(spec.step, spec.foreach_stack)
            if spec.step in self.rerun_steps or not all(
                pk in self._cloned_pks for pk in pending.parent_pks
            ):
                candidate = None
        if candidate is None and self.reuse and pending.key is not None:
            candidate = self.keys.find(pending.key)
            if candidate is not None:
                self._reused.add(spec.task_id)
        if candidate is None:
            return None
        self._clone_of[spec.task_id] = candidate
        now = now_iso()
        return TaskResult(
            spec,
            candidate.status,
            now,
            now,
            artifacts=dict(candidate.artifacts),
            transition=_resume().cloned_transition(self.ledger, candidate),
            stdout=candidate.stdout,
            stderr=candidate.stderr,
            exception_type=candidate.exception_type,
            exception=candidate.exception,
            traceback=candidate.traceback,
        )

    # -- scheduling -------------------------------------------------------------------------

    def _retry(self, pending: Pending, result: TaskResult) -> Pending | None:
        """The next attempt of a failed task, if its @retry (or @catch's fallback) allows
        one; it waits a short pause as it starts (attempts.py says why)."""
        spec = pending.spec
        if not attempts.may_retry(self.flow_cls, spec, result):  # @retry, @catch's fallback
            return None
        again = replace(spec, attempt=spec.attempt + 1)
        self._say_task(spec, attempts.retry_note(self.flow_cls, again))
        return Pending(
            again, pending.parent_pks, pending.splits, key=pending.key, inputs=pending.inputs
        )

    def _spec(
        self,
        step: str,
        parents: list[Done],
        foreach_stack: list[ForeachFrame],
        splits: tuple[SplitFrame, ...],
        is_join: bool = False,
        task_id: int | None = None,
        foreach_item: tuple[str, bytes] | None = None,
        input_pks: list[int] | None = None,
        preloaded: dict[str, tuple[str, bytes]] | None = None,
    ) -> TaskSpec:
        if task_id is None:
            task_id = self._next_task_id
            self._next_task_id += 1
        max_retries, timeout = self._step_settings(step)
        if preloaded is None:
            skip = foreach_stack[-1].var if foreach_item is not None else None
            preloaded = self._preloaded([p.artifacts for p in parents], skip=skip)
        if self._spec_template is None:
            self._spec_template = _Template(TaskSpec(
                flow_file=self.flow_file,
                flow_module=self.flow_cls.__module__,
                class_name=self.flow_cls.__name__,
                ledger_path=self._ledger_path,
                flow_name=self.flow_name,
                run_id=self.run_id,
                run_pk=self.run_pk,
                step=step,
                task_id="",
                constants=self.constants,
                param_names=self._param_names,
                max_num_splits=self.max_num_splits,
                username=self.username,
                tags=self.tags,
                origin_run_id=self.origin.run_id if self.origin else None,
            ))  # fmt: skip
        return self._spec_template.make(  # type: ignore[no-any-return]
            max_retries=max_retries,
            timeout=timeout,
            step=step,
            task_id=str(task_id),
            is_join=is_join,
            # A join reads its inputs' artifact maps from the ledger by task pk (they are
            # committed before it starts): the runtime keeps none of them while siblings
            # arrive, and a 10,000-input join's spec stays small.
            inputs=[p.artifacts for p in parents],
            input_pks=input_pks or [],
            input_steps=[],
            input_stacks=[],
            preloaded=preloaded,
            foreach_stack=foreach_stack,
            foreach_item=foreach_item,
        )

    def _step_settings(self, step: str) -> tuple[int, float | None]:
        """(@retry times, @timeout seconds) of a step, read once per step."""
        settings = self._settings.get(step)
        if settings is None:
            func = getattr(self.flow_cls, step)
            retry = step_decorator(func, "retry")
            timeout = step_decorator(func, "timeout")
            seconds = timeout.total_seconds if timeout else None  # type: ignore[attr-defined]
            settings = self._settings[step] = (
                int(retry.attributes["times"]) if retry else 0, seconds or None)  # fmt: skip
        return settings

    def _foreach_children(self, parent: Done, transition: Transition) -> Iterator[Pending]:
        """A foreach's tasks, made one by one as they can start. Their task ids are taken
        now, in a block, so ids follow the order tasks were scheduled in, as before."""
        count = int(transition.num_splits or 0)
        first = self._next_task_id
        self._next_task_id += count
        return self._make_foreach_children(parent, transition, first, count)

    def _make_foreach_children(self, parent: Done, transition: Transition, first: int,
                               count: int) -> Iterator[Pending]:  # fmt: skip
        target = transition.targets[0]
        values = transition.foreach_values or []
        items = transition.foreach_items
        inputs = inputs_digest([parent.outputs])
        # What every child is sent of its inputs' bytes (the same for all: made once)
        preloaded = self._preloaded([parent.artifacts], skip=transition.foreach if items else None)
        for index in range(count):
            frame = ForeachFrame(target, transition.foreach, count, index, values[index])
            splits = (*parent.splits, SplitFrame(parent.pk, index, count, True))
            spec = self._spec(target, [parent], [*parent.foreach_stack, frame], splits,
                              task_id=first + index,
                              foreach_item=items[index] if items else None,
                              preloaded=preloaded)  # fmt: skip
            yield Pending(spec, [parent.pk], splits, None, None, None, inputs)

    def _children(self, parent: Done, transition: Transition) -> list[Pending]:
        children: list[Pending] = []
        targets = transition.targets
        for index, target in enumerate(targets):
            splits = parent.splits
            if len(targets) > 1:
                splits = (*splits, SplitFrame(parent.pk, index, len(targets), False))
            child = self._next(target, parent, parent.foreach_stack, splits)
            if child is not None:
                children.append(child)
        return children

    def _next(
        self,
        step: str,
        parent: Done,
        foreach_stack: list[ForeachFrame],
        splits: tuple[SplitFrame, ...],
    ) -> Pending | None:
        if self.graph[step].type != "join":
            # Inside a foreach branch every step sees the same `self.input`.
            item = parent.foreach_item if foreach_stack == parent.foreach_stack else None
            spec = self._spec(step, [parent], foreach_stack, splits, foreach_item=item)
            return Pending(spec, [parent.pk], splits, None, None, None,
                           inputs_digest([parent.outputs]))  # fmt: skip
        # A join waits for every sibling of the split it closes. It reads its inputs'
        # artifacts from the ledger by task pk (they are committed before it starts), so
        # the runtime keeps one integer per sibling, and a 10,000-input join's spec is small.
        closing = splits[-1]
        key = (step, closing.split_pk, splits[:-1])
        arrivals = self._waiting_joins.get(key)
        if arrivals is None:
            arrivals = self._waiting_joins[key] = _Arrivals(
                array("q", bytes(8 * closing.count)), bytearray(32 * closing.count)
            )
        arrivals.pks[closing.index] = parent.pk
        arrivals.outputs[32 * closing.index : 32 * closing.index + 32] = parent.outputs
        arrivals.count += 1
        if arrivals.count < closing.count:
            return None
        del self._waiting_joins[key]
        stack = foreach_stack[:-1] if closing.is_foreach else foreach_stack
        pks = arrivals.pks.tolist()
        spec = self._spec(step, [], stack, splits[:-1], is_join=True, input_pks=pks)
        outputs = bytes(arrivals.outputs)
        inputs = inputs_digest([outputs[i : i + 32] for i in range(0, len(outputs), 32)])
        return Pending(spec, pks, splits[:-1], inputs=inputs)

    # -- recording --------------------------------------------------------------------------

    def _record(self, pending: Pending, result: TaskResult) -> TaskRecord:
        spec = pending.spec
        stdout, stderr = result.stdout, result.stderr  # a clone's, or what the task added
        if pending.log is not None:
            pending.log.close()
            out, err = pending.log.take()
            stdout, stderr = out + stdout, err + stderr
        origin = self._clone_of.get(spec.task_id)
        if result.traceback and origin is None:
            stderr += result.traceback
        elif result.exception and result.status in ("failed", "interrupted") and origin is None:
            stderr += f"{result.exception}\n"  # the process died, or Ctrl-C: say why
        return self._record_template.make(  # type: ignore[no-any-return]
            run_pk=self.run_pk,
            step=spec.step,
            task_id=spec.task_id,
            status=result.status,
            started_at=result.started_at,
            finished_at=result.finished_at,
            attempt=spec.attempt,
            foreach_index=spec.foreach_stack[-1].index if spec.foreach_stack else None,
            # (a started row has its stack: an update writes the outcome's columns alone)
            foreach_stack=[] if pending.pk else [list(f) for f in spec.foreach_stack],
            exception_type=result.exception_type,
            exception=result.exception,
            traceback=result.traceback,
            parent_pks=pending.parent_pks,
            artifacts=list(result.artifacts.values()),
            blobs=result.blobs,
            stdout=stdout,
            stderr=stderr,
            origin_pathspec=origin.pathspec if origin else None,
            transition=transition_record(result.transition),
            pk=pending.pk,
            cards=result.cards,
            host=result.host,
            reuse_key=pending.key if result.status in ("succeeded", "caught", "failed") else None,
        )

    # -- terminal -----------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.progress.say(text)  # progress.py decides what a wide run prints

    def _say_task(self, spec: TaskSpec, text: str) -> None:
        self.progress.task_note(_prefix(spec), text)

    def _report(self, result: TaskResult) -> None:
        spec = result.spec
        for warning in result.warnings:
            real_stream("stderr").write(f"{_prefix(spec)} {warning}\n")
        origin = self._clone_of.get(spec.task_id)
        if result.transition is not None and result.transition.foreach is not None:
            self.progress.foreach_yields(_prefix(spec), spec.step, result.transition.targets[0],
                                         int(result.transition.num_splits or 0))  # fmt: skip
        if origin is not None:
            verb = "Reused" if spec.task_id in self._reused else "Cloned"
            self.progress.task_ended(spec.step, _prefix(spec), "cloned",
                                     f"{verb} from {origin.pathspec}.")  # fmt: skip
            return
        if result.status == "succeeded":
            self.progress.task_ended(spec.step, _prefix(spec), "succeeded",
                                     "Task finished successfully.")  # fmt: skip
            return
        if result.status == "caught":
            self.progress.task_ended(spec.step, _prefix(spec), "caught",
                                     f"Task failed ({result.exception_type}); @catch let the "
                                     "flow go on.")  # fmt: skip
            return
        self.progress.task_ended(spec.step, _prefix(spec), "failed")
        # A failure is always shown, even with --quiet: it is why the run exits 1.
        err = real_stream("stderr")
        prefix = f"[{spec.run_id}/{spec.step}/{spec.task_id}]"
        if (result.exception_type or "").startswith("ledgerflow."):
            # A misuse of ledgerflow's API (self.next, merge_artifacts, a reserved name...):
            # one line naming the user's line; the traceback is in the task's stderr.
            where = f"{result.location}: " if result.location else ""
            err.write(f"{prefix} {where}{result.exception}\n")
        else:
            for line in (result.traceback or "").rstrip("\n").split("\n"):
                err.write(f"{prefix} {line}\n")
        err.write(f"{prefix} Task failed.\n")
        err.flush()


def _take(ready: deque[Pending | Iterator[Pending]]) -> Pending | None:
    """The next task that may start, or None when a foreach's children ran out."""
    head = ready[0]
    if isinstance(head, Pending):
        ready.popleft()
        return head
    pending = next(head, None)
    if pending is None:
        ready.popleft()
    return pending


def _prefix(spec: TaskSpec) -> str:
    """How the console names a task: `[RUN_ID/STEP/TASK_ID]`, as Metaflow's does."""
    return f"[{spec.run_id}/{spec.step}/{spec.task_id}]"


@contextlib.contextmanager
def _sigterm_interrupts(ignore: bool = False) -> Iterator[None]:
    """While the run goes on, SIGTERM stops it as Ctrl-C does (raising RunTerminated, a
    KeyboardInterrupt), so its tasks are stopped and recorded; with `ignore`, a second
    SIGTERM does not cut that short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise RunTerminated("stopped by SIGTERM")

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
