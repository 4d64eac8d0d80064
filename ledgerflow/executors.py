"""Executors run tasks; the runtime decides what runs and writes the results.

An executor is a class passed in (`Runtime(..., executor=ThreadExecutor(4))`). `submit`
takes a picklable `TaskSpec` and returns a future of a `TaskResult`, so an executor may run
the task anywhere that can read the ledger: a thread, a process, or (next) another machine.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from .task import TaskResult, TaskSpec, run_task

DEFAULT_MAX_WORKERS = 16  # as Metaflow's --max-workers


class Executor:
    """Base class: run tasks, report results through futures."""

    name = "base"

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers

    def submit(self, spec: TaskSpec) -> Future[TaskResult]:
        raise NotImplementedError

    def shutdown(self, wait: bool = True) -> None:
        """Release workers. Running tasks finish first when wait is True."""


class SequentialExecutor(Executor):
    """Runs each task in the calling thread, one at a time. Simplest to debug."""

    name = "sequential"

    def __init__(self, max_workers: int = 1):
        super().__init__(1)

    def submit(self, spec: TaskSpec) -> Future[TaskResult]:
        future: Future[TaskResult] = Future()
        try:
            future.set_result(run_task(spec))
        except BaseException as e:  # pragma: no cover - run_task records user errors itself
            future.set_exception(e)
        return future


class ThreadExecutor(Executor):
    """Runs tasks in a pool of threads (the default): cheap to start, shares the process.
    Suits I/O-bound steps and steps whose libraries release the GIL."""

    name = "thread"

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS):
        super().__init__(max_workers)
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="ledgerflow-task")

    def submit(self, spec: TaskSpec) -> Future[TaskResult]:
        return self._pool.submit(run_task, spec)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


class ProcessExecutor(Executor):
    """Runs tasks in a pool of processes: CPU-bound steps scale with cores.

    Workers read their inputs from the ledger by SHA and send results back encoded."""

    name = "process"

    def __init__(self, max_workers: int | None = None):
        # Imported here: multiprocessing costs every run ~10 ms of start-up otherwise.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        super().__init__(max_workers or os.cpu_count() or 1)
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._pool = ProcessPoolExecutor(self.max_workers, mp_context=context)

    def submit(self, spec: TaskSpec) -> Future[TaskResult]:
        return self._pool.submit(run_task, spec)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


EXECUTORS: dict[str, type[Executor]] = {
    "thread": ThreadExecutor,
    "process": ProcessExecutor,
    "sequential": SequentialExecutor,
}
