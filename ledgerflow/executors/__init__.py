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
- `interrupt()` stops running tasks (Ctrl-C, SIGTERM); their futures still complete, with
  status 'interrupted'. `shutdown()` releases workers.

Executors are classes passed in (`Runtime(..., executor=ThreadExecutor(4))`); the names the
command line accepts are in EXECUTORS.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..taskspec import TaskResult, TaskSpec

DEFAULT_MAX_WORKERS = 16  # as Metaflow's --max-workers


class OutputSink(Protocol):
    """Where a running task's output goes (the runtime's TaskLog)."""

    def write(self, stream: str, text: str) -> None: ...


class Executor:
    """Base class: run tasks, report results through futures."""

    in_process = False  # True: tasks run in the runtime's own process (they share its caches)

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers

    def submit(self, spec: TaskSpec, output: OutputSink) -> Future[TaskResult]:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stop the running tasks as soon as possible (their futures still complete)."""

    def shutdown(self, wait: bool = True) -> None:
        """Release workers. Running tasks finish first when wait is True."""


def executor_class(name: str) -> type[Executor]:
    """The executor a command line names (imported only when chosen)."""
    if name == "process":
        from .processes import ProcessExecutor

        return ProcessExecutor
    if name == "dask":
        from .dask import DaskExecutor  # raises a one-line error without Dask installed

        return DaskExecutor
    if name == "spawn":
        from .processes import SpawnExecutor

        return SpawnExecutor
    from .inprocess import SequentialExecutor, ThreadExecutor

    return {"thread": ThreadExecutor, "sequential": SequentialExecutor}[name]


# What --executor accepts, the default first, with what each one shares between tasks.
EXECUTORS = {
    "process": "one fresh process per task, forked from a server that has the flow imported "
    "(the default; nothing is shared between tasks)",
    "spawn": "one fresh Python interpreter per task (slower to start; what platforms "
    "without fork use)",
    "thread": "threads of the run's process (tasks share globals, os.environ, the cwd and "
    "signal handlers; for steps that share nothing)",
    "sequential": "one task at a time in the run's own thread (simplest to debug)",
    "dask": "tasks on a Dask cluster (--dask-scheduler, or a LocalCluster of this machine's "
    "cores); workers never open the ledger (docs/scale-out.md)",
}
# POSIX: fork where it exists (Linux, macOS), else spawn. Windows has neither fork nor the
# file-descriptor passing the process executors use (untested there): threads.
DEFAULT_EXECUTOR = "process" if os.name == "posix" else "thread"


def __getattr__(name: str) -> type[Executor]:
    """`from ledgerflow.executors import ThreadExecutor` (and the others), imported lazily:
    a run loads only the executor it uses."""
    names = {"ProcessExecutor": "process", "SpawnExecutor": "spawn",
             "ThreadExecutor": "thread", "SequentialExecutor": "sequential",
             "DaskExecutor": "dask"}  # fmt: skip
    if name in names:
        return executor_class(names[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
