"""The runtime's one loop: with the default executor, the run's own thread serves every
task's pipes and socket itself (executors/processes.py `wait`), between its commits. Output
still streams into the ledger while a task runs, and a task printing more than a pipe holds
while the runtime is busy elsewhere waits for it, without a deadlock or a lost byte."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from ledgerflow import writes
from ledgerflow.executors import Executor
from ledgerflow.executors.processes import ProcessExecutor
from ledgerflow.ledger import Ledger
from ledgerflow.runtime import Runtime

from .helpers import FLOWS, query
from .test_cost_model import load_flow

LOUD = FLOWS / "runloop" / "loud_flow.py"
SLOW = FLOWS / "runloop" / "slow_flow.py"


def _log(db, step: str, stream: str) -> str:
    rows = query(db, "select log_text(id, ?) from task where step = ?", (stream, step))
    return rows[0][0] or "" if rows else ""


def test_output_reaches_the_ledger_while_the_task_runs_and_the_runtime_waits(tmp_path):
    db, go = tmp_path / "live.db", tmp_path / "go"
    proc = subprocess.Popen([sys.executable, str(SLOW), "--db", str(db), "--quiet", "run",
                             "--go", str(go)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.time() + 60
        seen = ""
        while time.time() < deadline and "first line" not in seen:
            time.sleep(0.1)
            if db.exists():
                try:
                    seen = _log(db, "start", "stdout")
                except Exception:  # noqa: BLE001 - the ledger is being created
                    seen = ""
        # the task still runs (it waits for `go`): the runtime read its pipe while waiting
        assert "first line, while the task runs" in seen
        assert "last line" not in seen
        assert query(db, "select status from task where step = 'start'") == [("running",)]
    finally:
        go.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _log(db, "start", "stdout") == "first line, while the task runs\nlast line\n"


@pytest.mark.timeout(120)
def test_tasks_printing_megabytes_while_the_runtime_commits_slowly(db_path, monkeypatch):
    commit = writes.commit_tasks
    commits = [0]

    def slow_commit(*args, **kwargs):
        commits[0] += 1
        time.sleep(0.05)  # the runtime is away from the tasks' pipes meanwhile
        return commit(*args, **kwargs)

    monkeypatch.setattr(writes, "commit_tasks", slow_commit)
    flow = load_flow(LOUD, "LoudFlow")
    outcome = Runtime(flow, Ledger.open(db_path), {"n": 4, "kb": 2048},
                      executor=ProcessExecutor(max_workers=4), quiet=True,
                      echo_logs=False).run()  # fmt: skip
    assert outcome.status == "succeeded" and commits[0] > 0
    rows = query(db_path, "select foreach_index, log_text(id, 'stdout'), log_text(id, 'stderr') "
                          "from task where step = 'work' order by foreach_index")  # fmt: skip
    assert [r[0] for r in rows] == [0, 1, 2, 3]
    for index, out, err in rows:
        line = f"{index:04d} " + "x" * 1019 + "\n"
        assert out == line * 2048  # 2 MiB, every byte in order
        assert err == ("e" * 1023 + "\n") * 512


class CountingWaits(ProcessExecutor):
    """The default executor, noting which threads its futures complete in."""

    def __init__(self):
        super().__init__(max_workers=3)
        self.threads: set[str] = set()

    def start(self, spec, output):
        future = super().start(spec, output)
        future.add_done_callback(lambda f: self.threads.add(threading.current_thread().name))
        return future


def test_the_process_executor_runs_no_thread_of_its_own(db_path):
    flow = load_flow(LOUD, "LoudFlow")
    executor = CountingWaits()
    outcome = Runtime(flow, Ledger.open(db_path), {"n": 5, "kb": 1}, executor=executor,
                      quiet=True, echo_logs=False).run()  # fmt: skip
    assert outcome.status == "succeeded"
    # every task completed in the runtime's own thread, and no I/O thread was started
    assert executor.threads == {threading.current_thread().name}
    assert not [t.name for t in threading.enumerate() if t.name.startswith("ledgerflow-task")]


class Immediate(Executor):
    """An executor that implements `submit` alone (the contract's minimum): the base class's
    `start`/`wait`/`wake` serve the runtime."""

    in_process = True

    def submit(self, spec, output):
        from concurrent.futures import Future

        from ledgerflow.task import run_task

        future = Future()
        threading.Thread(target=lambda: future.set_result(run_task(spec, output))).start()
        return future


def test_an_executor_implementing_submit_alone_runs_a_flow(db_path):
    flow = load_flow(LOUD, "LoudFlow")
    outcome = Runtime(flow, Ledger.open(db_path), {"n": 3, "kb": 1}, executor=Immediate(2),
                      quiet=True, echo_logs=False).run()  # fmt: skip
    assert outcome.status == "succeeded"
    assert query(db_path, "select count(*) from task where status = 'succeeded'") == [(6,)]


def test_wake_makes_the_base_wait_return_at_once():
    executor = Immediate(1)
    threading.Timer(0.05, executor.wake).start()
    started = time.monotonic()
    assert executor.wait(30) == []
    assert time.monotonic() - started < 20


def test_a_task_future_completes_once_and_runs_its_callbacks():
    from ledgerflow.executors import TaskFuture

    future, seen = TaskFuture(), []
    future.add_done_callback(seen.append)
    assert not future.done() and not future.cancelled() and seen == []
    with pytest.raises(RuntimeError, match="not ended yet"):
        future.result()
    future.set_result("the result")  # (any value: the executors give a TaskResult)
    assert future.done() and future.result() == "the result" and future.exception() is None
    assert seen == [future]
    future.add_done_callback(seen.append)  # after completion: called at once
    assert seen == [future, future]
    with pytest.raises(RuntimeError, match="completed once"):
        future.set_result("again")
