"""Drive a run: walk the graph, hand ready tasks to an executor, and commit each finished
task in one transaction from this (the only writing) thread.

Bookkeeping per finished task: its artifact map (what its children inherit), its foreach
stack (Metaflow's `_foreach_stack`) and its split stack — one frame per open split, static
or foreach — which tells a join which sibling tasks it waits for.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from . import __version__, codec
from .capture import real_stream
from .clock import now_iso
from .current import get_username
from .decorators import step_decorator
from .exceptions import LedgerError, LintError
from .executors import Executor, ThreadExecutor
from .flowspec import ForeachFrame
from .internals import transition_record
from .liveness import HEARTBEAT_EVERY
from .ledger import Ledger
from .parameters import flow_parameters
from .records import ArtifactRecord, TaskRecord
from .sourcecode import class_file
from .structs import factory, replace, struct
from .task import TaskResult, TaskSpec, encode_artifact, flow_graph, register_flow_class

if TYPE_CHECKING:
    from .resume import Origin, OriginTask


def _resume() -> Any:
    from . import resume  # only `resume` runs clone tasks

    return resume


DEFAULT_MAX_NUM_SPLITS = 100  # as Metaflow's --max-num-splits


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


@struct
class Pending:
    spec: TaskSpec
    parents: list[Done]
    splits: tuple[SplitFrame, ...]


@struct
class RunOutcome:
    run_id: str
    status: str  # succeeded | failed
    failed_tasks: list[str] = factory(list)


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
        echo_logs: bool = True,
        on_run_id: Callable[[str], None] | None = None,
        origin: Origin | None = None,
        rerun_steps: set[str] | None = None,
    ):
        self.flow_cls = flow_cls
        self.flow_name = flow_cls.__name__
        self.ledger = ledger
        self.params = params
        self.executor = executor or ThreadExecutor()
        self.tags = list(tags or [])
        self.max_num_splits = max_num_splits
        self.quiet = quiet
        self.echo_logs = echo_logs and not quiet
        self.on_run_id = on_run_id
        self.graph = flow_graph(flow_cls)
        _check_decorators(self.graph, flow_cls)
        self.flow_file = os.path.abspath(class_file(flow_cls) or sys.argv[0])
        self.username = get_username()
        self._next_task_id = 1
        self._waiting_joins: dict[tuple[Any, ...], dict[int, Done]] = {}
        self.failed: list[str] = []
        # resume: the run we clone from, the steps to run again, and what got cloned
        self.origin = origin
        self.rerun_steps = rerun_steps or set()
        self._cloned_pks: set[int] = set()
        self._clone_of: dict[str, OriginTask] = {}
        self._running: dict[Future[TaskResult], Pending] = {}
        self._last_beat = time.monotonic()

    # -- set-up ---------------------------------------------------------------------------

    def _constants(self) -> tuple[dict[str, ArtifactRecord], list[codec.EncodedBlob]]:
        """Parameters and `name`: encoded once, referenced by every task."""
        values: dict[str, Any] = {"name": self.flow_name}
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
        return records, blobs

    def _system_tags(self) -> list[str]:
        return [
            f"user:{self.username}",
            "runtime:dev",
            f"python_version:{codec.PYTHON_VERSION}",
            f"ledgerflow_version:{__version__}",
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
        self.run_pk = self.ledger.create_run(
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
            return self._run_loop()
        finally:
            # Copying the last big commits into the file ends with the run, not after it.
            self.ledger.checkpointer.finish()

    def _run_loop(self) -> RunOutcome:
        status = "failed"
        try:
            status = self._loop()
        except KeyboardInterrupt:
            # Ctrl-C: what finished is committed already; mark what was running as
            # interrupted and the run as failed, then let the caller exit (130).
            self.executor.shutdown(wait=False)
            try:
                self._record_interrupted()
                self.ledger.finish_run(self.run_pk, "failed")
                self._say("Interrupted: the run is marked failed; `resume` continues it.")
            except LedgerError:
                # Cannot say so in the ledger: the next open marks the run crashed. Still
                # leave as Ctrl-C asks (exit 130), not as a ledger error.
                pass
            raise
        except LedgerError:
            # The ledger refused a write (disk full, file deleted...): stop, and try to say
            # so in the ledger; if even that fails, the next open marks the run crashed.
            self.executor.shutdown(wait=False)
            with contextlib.suppress(Exception):
                self.ledger.finish_run(self.run_pk, "failed")
            raise
        self.executor.shutdown(wait=True)
        self.ledger.finish_run(self.run_pk, status)
        if status == "succeeded":
            self._say("Done!")
        else:
            self._say("Workflow failed.")
        return RunOutcome(self.run_id, status, self.failed)

    def _loop(self) -> str:
        ready: list[Pending] = [Pending(self._spec("start", [], [], ()), [], ())]
        running = self._running
        retries: list[tuple[float, Pending]] = []  # (when, task) for @retry
        end_ok = False
        while ready or running or retries:
            now = time.monotonic()
            ready += [p for when, p in retries if when <= now]
            retries = [(when, p) for when, p in retries if when > now]
            clones: list[tuple[Pending, TaskResult]] = []
            if not self.failed:
                for pending in ready:
                    clone = self._clone(pending)
                    if clone is not None:
                        clones.append((pending, clone))
                        continue
                    self._say_task(pending.spec, "Task is starting.")
                    running[self.executor.submit(pending.spec)] = pending
            ready = []
            if clones:
                ready, end_ok = self._commit(clones, ready, retries, end_ok)
                continue
            if not running:
                if retries and not self.failed:
                    time.sleep(max(0.0, min(w for w, _ in retries) - time.monotonic()))
                    continue
                break
            next_retry = min((w for w, _ in retries), default=None)
            timeout = HEARTBEAT_EVERY if next_retry is None else \
                min(HEARTBEAT_EVERY, max(0.0, next_retry - time.monotonic()))
            done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            if time.monotonic() - self._last_beat >= HEARTBEAT_EVERY:
                self.ledger.heartbeat(self.run_pk)
                self._last_beat = time.monotonic()
            finished = [(running.pop(f), f.result()) for f in done]
            ready, end_ok = self._commit(finished, ready, retries, end_ok)
        return "succeeded" if end_ok and not self.failed else "failed"

    def _commit(
        self,
        finished: list[tuple[Pending, TaskResult]],
        ready: list[Pending],
        retries: list[tuple[float, Pending]],
        end_ok: bool,
    ) -> tuple[list[Pending], bool]:
        """Write finished tasks in one transaction, then schedule what they unblock."""
        finished.sort(key=lambda item: (int(item[0].spec.task_id), item[0].spec.attempt))
        pks = self.ledger.record_tasks([self._record(p, r) for p, r in finished])
        for (pending, result), pk in zip(finished, pks):
            if pending.spec.task_id in self._clone_of:
                self._cloned_pks.add(pk)
            self._report(result)
            if not result.ok:
                retry = self._retry(pending)
                if retry is not None:
                    retries.append(retry)
                else:
                    self.failed.append(pending.spec.pathspec)
                continue
            if pending.spec.step == "end":
                end_ok = True
                continue
            done_task = Done(
                pk,
                pending.spec.step,
                result.artifacts,
                list(pending.spec.foreach_stack),
                pending.splits,
            )
            ready.extend(self._children(done_task, result))
        return ready, end_ok

    def _record_interrupted(self) -> None:
        records = []
        now = now_iso()
        for future, pending in self._running.items():
            spec = pending.spec
            result = TaskResult(spec, "interrupted", now, now, exception_type="KeyboardInterrupt",
                                exception="interrupted by the user (Ctrl-C)")  # fmt: skip
            if future.done() and not future.cancelled() and future.exception() is None:
                result = future.result()  # it finished meanwhile: keep it whole
            records.append(self._record(pending, result))
        if records:
            self.ledger.record_tasks(records)

    def _clone(self, pending: Pending) -> TaskResult | None:
        """resume: the origin's result for this task, when it can be reused as is."""
        spec = pending.spec
        if self.origin is None or spec.attempt > 0:
            return None
        candidate = self.origin.take(spec.step, spec.foreach_stack)
        if (
            candidate is None
            or spec.step in self.rerun_steps
            or not all(p.pk in self._cloned_pks for p in pending.parents)
        ):
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

    def _retry(self, pending: Pending) -> tuple[float, Pending] | None:
        """The next attempt of a failed task, if its @retry allows one."""
        spec = pending.spec
        if spec.attempt >= spec.max_retries:
            return None
        deco = step_decorator(getattr(self.flow_cls, spec.step), "retry")
        minutes = float(deco.attributes["minutes_between_retries"]) if deco else 0.0
        again = replace(spec, attempt=spec.attempt + 1)
        self._say_task(spec, f"Retrying (attempt {again.attempt + 1} of {spec.max_retries + 1})"
                             + (f" in {minutes:g} minutes." if minutes else "."))
        return time.monotonic() + 60 * minutes, Pending(again, pending.parents, pending.splits)

    def _spec(
        self,
        step: str,
        parents: list[Done],
        foreach_stack: list[ForeachFrame],
        splits: tuple[SplitFrame, ...],
        is_join: bool = False,
    ) -> TaskSpec:
        task_id = str(self._next_task_id)
        self._next_task_id += 1
        retry = step_decorator(getattr(self.flow_cls, step), "retry")
        return TaskSpec(
            max_retries=int(retry.attributes["times"]) if retry else 0,
            flow_file=self.flow_file,
            flow_module=self.flow_cls.__module__,
            class_name=self.flow_cls.__name__,
            ledger_path=str(self.ledger.path),
            flow_name=self.flow_name,
            run_id=self.run_id,
            run_pk=self.run_pk,
            step=step,
            task_id=task_id,
            is_join=is_join,
            inputs=[p.artifacts for p in parents],
            input_steps=[p.step for p in parents],
            input_stacks=[p.foreach_stack for p in parents],
            foreach_stack=foreach_stack,
            constants=self.constants,
            param_names=frozenset(self.params),
            max_num_splits=self.max_num_splits,
            echo=self.echo_logs,
            username=self.username,
            tags=self.tags,
            origin_run_id=self.origin.run_id if self.origin else None,
        )

    def _children(self, parent: Done, result: TaskResult) -> list[Pending]:
        transition = result.transition
        assert transition is not None
        children: list[Pending] = []
        if transition.foreach is not None:
            target = transition.targets[0]
            count = int(transition.num_splits or 0)
            values = transition.foreach_values or []
            for index in range(count):
                frame = ForeachFrame(target, transition.foreach, count, index, values[index])
                split = SplitFrame(parent.pk, index, count, True)
                children.append(self._next(target, parent, [*parent.foreach_stack, frame],
                                           (*parent.splits, split)))  # fmt: skip
            return children
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
            return Pending(self._spec(step, [parent], foreach_stack, splits), [parent], splits)
        # A join waits for every sibling of the split it closes.
        closing = splits[-1]
        key = (step, closing.split_pk, splits[:-1])
        arrived = self._waiting_joins.setdefault(key, {})
        arrived[closing.index] = parent
        if len(arrived) < closing.count:
            return None
        del self._waiting_joins[key]
        parents = [arrived[i] for i in range(closing.count)]
        stack = foreach_stack[:-1] if closing.is_foreach else foreach_stack
        spec = self._spec(step, parents, stack, splits[:-1], is_join=True)
        return Pending(spec, parents, splits[:-1])

    # -- recording --------------------------------------------------------------------------

    def _record(self, pending: Pending, result: TaskResult) -> TaskRecord:
        spec = pending.spec
        stderr = result.stderr
        origin = self._clone_of.get(spec.task_id)
        if result.traceback and origin is None:
            stderr += result.traceback
        return TaskRecord(
            run_pk=self.run_pk,
            step=spec.step,
            task_id=spec.task_id,
            status=result.status,
            started_at=result.started_at,
            finished_at=result.finished_at,
            attempt=spec.attempt,
            foreach_index=spec.foreach_stack[-1].index if spec.foreach_stack else None,
            foreach_stack=[list(f) for f in spec.foreach_stack],
            exception_type=result.exception_type,
            exception=result.exception,
            traceback=result.traceback,
            parent_pks=[p.pk for p in pending.parents],
            artifacts=list(result.artifacts.values()),
            blobs=result.blobs,
            stdout=result.stdout,
            stderr=stderr,
            origin_pathspec=origin.pathspec if origin else None,
            transition=transition_record(result.transition),
        )

    # -- terminal -----------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if not self.quiet:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            real_stream("stdout").write(f"{stamp} {text}\n")
            real_stream("stdout").flush()

    def _say_task(self, spec: TaskSpec, text: str) -> None:
        if not self.quiet:
            self._say(f"[{spec.run_id}/{spec.step}/{spec.task_id}] {text}")

    def _report(self, result: TaskResult) -> None:
        spec = result.spec
        origin = self._clone_of.get(spec.task_id)
        if origin is not None:
            self._say_task(spec, f"Cloned from {origin.pathspec}.")
            return
        if result.status == "succeeded":
            self._say_task(spec, "Task finished successfully.")
            return
        if result.status == "caught":
            self._say_task(spec, f"Task failed ({result.exception_type}); @catch let the "
                                 "flow go on.")
            return
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
