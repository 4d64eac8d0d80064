"""Executors that run tasks inside the run's own process: in threads, or one at a time.

Tasks share the process: module globals, `os.environ`, the working directory, signal
handlers. A step's own threads, subprocesses and C code print to the terminal uncaptured
(only `sys.stdout`/`sys.stderr` writes from the task's thread are routed to its log), and a
timeout or Ctrl-C cannot stop a step mid-call. Use them for steps that share nothing, or to
debug; the default executor runs each task in a process of its own (processes.py).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from ..task import run_task
from ..taskspec import TaskResult, TaskSpec
from . import DEFAULT_MAX_WORKERS, Executor, OutputSink


class SequentialExecutor(Executor):
    """Runs each task in the calling thread, one at a time. Simplest to debug."""

    in_process = True

    def __init__(self, max_workers: int = 1):
        super().__init__(1)

    def submit(self, spec: TaskSpec, output: OutputSink) -> Future[TaskResult]:
        future: Future[TaskResult] = Future()
        try:
            future.set_result(run_task(spec, output))
        # run_task records the user's errors itself: this is for a bug of ours.
        except BaseException as e:  # pragma: no cover  # noqa: BLE001
            future.set_exception(e)
        return future


class ThreadExecutor(Executor):
    """Runs tasks in a pool of threads: cheap to start, shares the process.
    Suits I/O-bound steps and steps whose libraries release the GIL."""

    in_process = True

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS):
        super().__init__(max_workers)
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="ledgerflow-task")

    def submit(self, spec: TaskSpec, output: OutputSink) -> Future[TaskResult]:
        return self._pool.submit(run_task, spec, output)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
