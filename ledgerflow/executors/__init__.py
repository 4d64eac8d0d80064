"""Executors run tasks; the runtime decides what runs and writes the results.

The contract (docs/architecture.md draws it):

- `submit(spec, output)` takes a picklable `TaskSpec` (inputs are `ArtifactRecord`s: names,
  SHAs and previews, never values) and an `output` sink, and returns a future of a
  `TaskResult`.
- While the task runs, everything it prints (from any thread, a subprocess, or C code in the
  process version) reaches `output.write(stream, text)`, from any thread of the executor's
  choosing. The runtime echoes it and commits it to the ledger as it comes.
- The result carries the task's artifact records and the encoded blobs the ledger does not
  have yet; an executor whose tasks can write to the ledger themselves may store large blobs
  there before the result is returned (content-addressed, so a blob written twice is one
  row), and the runtime then commits the task row that references them. Only the runtime
  writes runs and tasks.
- The runtime's loop runs in one thread: it calls `start(spec, output)` (submit, and note the
  future) and `wait(timeout)`, which returns the futures of the tasks that completed since the
  last call, waiting up to `timeout` seconds for the first; `wake()` (from a sink whose unsaved
  output is large) makes it return sooner. The base class does this with a queue fed by each
  future's done-callback, so an executor need only implement `submit` (thread, sequential
  and Dask executors do so); the process executor overrides `start` and `wait`: its `wait`
  serves its tasks' channels in the runtime's thread, and its futures complete there.
- `interrupt()` stops running tasks (Ctrl-C, SIGTERM); their futures still complete, with
  status 'interrupted'. `shutdown()` releases workers.
- Declared on the base class, read by the runtime: `in_process` (tasks share the runtime's
  process, and so its caches: no input bytes are sent with their specs), `max_workers` (how
  many tasks run at once), and `prepare(flow_cls)`, called once before the run's process opens
  the ledger (the process executor forks its fork server there).
- A spec carries what its step's decorators ask of the executor (`spec.timeout`: @timeout in
  seconds, read once by the runtime); an executor never reads the flow's decorators itself.

The names the command line accepts are the keys of EXECUTORS, one table: the module and
class of each, imported only when chosen, and what it shares between tasks. A command line
makes its executor with `make_executor(name, max_workers, **options)`, which calls the
class's `from_options` (the Dask executor takes its scheduler's address there).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..capture import OutputSink
from ..clock import now_iso, stored_iso
from ..exceptions import TaskCrashed

if TYPE_CHECKING:
    from queue import SimpleQueue

    from ..taskspec import TaskResult, TaskSpec

DEFAULT_MAX_WORKERS = 16  # as Metaflow's --max-workers


class ResultFuture(Protocol):
    """What the runtime reads of a task's future: a `concurrent.futures.Future` (the thread
    and sequential executors'), or a `TaskFuture` (the process and Dask executors')."""

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def result(self, timeout: float | None = None) -> TaskResult: ...

    def exception(self, timeout: float | None = None) -> BaseException | None: ...

    def add_done_callback(self, fn: Callable[[Any], object]) -> None: ...


class TaskFuture:
    """A task's future without `concurrent.futures`, whose import (with the `logging` it
    brings) cost every run ~8 ms of start-up before its first task. It never fails (a task
    that could not run has a failed result) and is never cancelled. Completed once, from any
    thread, by `set_result`, whose thread runs its done-callbacks; `result` does not wait
    (the process executor completes its futures inside `wait`, in the caller's thread)."""

    __slots__ = ("_callbacks", "_lock", "_result")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: TaskResult | None = None
        self._callbacks: list[Callable[[TaskFuture], object]] = []

    def done(self) -> bool:
        return self._result is not None

    def cancelled(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> TaskResult:
        if self._result is None:
            raise RuntimeError("the task has not ended yet: its executor's wait() completes it")
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self.result()
        return None

    def set_result(self, result: TaskResult) -> None:
        with self._lock:
            if self._result is not None:
                raise RuntimeError("a task's future is completed once")
            self._result = result
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        with self._lock:
            if self._result is None:
                self._callbacks.append(fn)
                return
        fn(self)


class Executor:
    """Base class: run tasks, report results through futures."""

    in_process = False  # True: tasks run in the runtime's own process (they share its caches)

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers

    @classmethod
    def from_options(cls, max_workers: int, **options: Any) -> Executor:
        """The executor a command line asks for (options it does not use are ignored)."""
        return cls(max_workers)

    def prepare(self, flow_cls: type) -> None:
        """Called once before the run's process opens the ledger (optional work)."""

    def submit(self, spec: TaskSpec, output: OutputSink) -> ResultFuture:
        raise NotImplementedError

    def start(self, spec: TaskSpec, output: OutputSink) -> ResultFuture:
        """What the runtime calls: submit, and have `wait` return the future once done."""
        future = self.submit(spec, output)
        future.add_done_callback(self._completions().put)
        return future

    def wait(self, timeout: float | None) -> list[ResultFuture]:
        """The futures of started tasks that completed since the last call, waiting up to
        `timeout` seconds for the first ([] then, or sooner after `wake`)."""
        from queue import Empty

        queue = self._completions()
        try:
            first = queue.get(timeout=timeout)
        except Empty:
            return []
        done = [] if first is None else [first]
        while True:
            try:
                future = queue.get_nowait()
            except Empty:
                return done
            if future is not None:
                done.append(future)

    def wake(self) -> None:
        """Make `wait` return now (from any thread)."""
        self._completions().put(None)

    def _completions(self) -> SimpleQueue[ResultFuture | None]:
        # Made on first use: a subclass need not call this class's __init__.
        queue = self.__dict__.get("_done")
        if queue is None:
            from queue import SimpleQueue

            queue = self.__dict__["_done"] = SimpleQueue()
        return queue  # type: ignore[no-any-return]

    def interrupt(self) -> None:
        """Stop the running tasks as soon as possible (their futures still complete)."""

    def shutdown(self, wait: bool = True) -> None:
        """Release workers. Running tasks finish first when wait is True."""


class RunningTask:
    """An executor's side of one submitted task: its spec, where its output goes, the future
    the runtime waits on, and when it was handed over (processes.py and dask.py extend it)."""

    def __init__(self, spec: TaskSpec, output: OutputSink):
        self.spec, self.output = spec, output
        self.future = TaskFuture()
        self.handed_over = datetime.now(UTC)  # as text only if the task fails without a result

    def failed(self, why: str, status: str = "failed") -> TaskResult:
        """The result of a task that ended without one of its own (its process crashed, its
        worker died, the run was interrupted): TaskCrashed, with the reason."""
        from ..taskspec import TaskResult

        return TaskResult(self.spec, status, stored_iso(self.handed_over), now_iso(),
                          exception_type=f"{TaskCrashed.__module__}.{TaskCrashed.__name__}",
                          exception=why)  # fmt: skip


# name -> (module in this package, class, what it shares between tasks); the default first.
EXECUTORS: dict[str, tuple[str, str, str]] = {
    "process": ("processes", "ProcessExecutor",
                "one fresh process per task, forked from a server that has the flow imported "
                "(the default; nothing is shared between tasks)"),
    "spawn": ("processes", "SpawnExecutor",
              "one fresh Python interpreter per task (slower to start; what platforms without "
              "fork use)"),
    "thread": ("inprocess", "ThreadExecutor",
               "threads of the run's process (tasks share globals, os.environ, the cwd and "
               "signal handlers; for steps that share nothing)"),
    "sequential": ("inprocess", "SequentialExecutor",
                   "one task at a time in the run's own thread (simplest to debug)"),
    "dask": ("dask", "DaskExecutor",
             "tasks on a Dask cluster (--dask-scheduler, or a LocalCluster of this machine's "
             "cores); workers never open the ledger (docs/scale-out.md)"),
}  # fmt: skip
# POSIX: fork where it exists (Linux, macOS), else spawn. Windows has neither fork nor the
# file-descriptor passing the process executors use (untested there): threads.
DEFAULT_EXECUTOR = "process" if os.name == "posix" else "thread"


def executor_class(name: str) -> type[Executor]:
    """The executor class a command line names, imported only when chosen (Dask's import
    raises a one-line error without Dask installed)."""
    import importlib

    module, cls, _ = EXECUTORS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)  # type: ignore[no-any-return]


def make_executor(name: str, max_workers: int, **options: Any) -> Executor:
    """The executor `--executor NAME` makes, given the command line's options."""
    return executor_class(name).from_options(max_workers, **options)


def __getattr__(name: str) -> type[Executor]:
    """`from ledgerflow.executors import ThreadExecutor` (and the others), imported lazily:
    a run loads only the executor it uses."""
    for key, (_module, cls, _) in EXECUTORS.items():
        if cls == name:
            return executor_class(key)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
