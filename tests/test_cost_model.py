"""Cost models that cannot be flaky: how many write transactions and blob writes a run makes.
(Timings live in scripts/bench.py, never in tests.)"""

from __future__ import annotations

import importlib.util
import sys

from ledgerflow.executors import Executor, SequentialExecutor
from ledgerflow.ledger import Ledger

from .helpers import FLOWS, query


def load_flow(path, name):
    spec = importlib.util.spec_from_file_location(f"_cost_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # inspect finds the source through it
    spec.loader.exec_module(module)
    return getattr(module, name)


def count_writes(ledger: Ledger, monkeypatch) -> list[int]:
    calls = [0]
    original = Ledger.write

    def counting(self):
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(Ledger, "write", counting)
    return calls


def test_at_most_one_transaction_per_task_plus_run_bookkeeping(db_path, monkeypatch):
    from ledgerflow.runtime import Runtime

    flow = load_flow(FLOWS / "engine" / "foreach.py", "ForeachFlow")
    ledger = Ledger.open(db_path)
    writes = count_writes(ledger, monkeypatch)
    Runtime(flow, ledger, {}, executor=SequentialExecutor(), quiet=True, echo_logs=False).run()
    tasks = query(db_path, "select count(*) from task")[0][0]
    assert tasks == 9  # start, 6 items, join, end
    # one per task (or fewer: finished tasks share one), plus flow, run start and run end
    assert writes[0] <= tasks + 3


class RunsAtSubmit(Executor):
    """A real executor (the contract of ledgerflow.executors) that runs each task when it is
    submitted, 8 slots wide: every task started in one round has finished by the time the
    runtime waits, so which tasks finish together is certain, not a matter of timing."""

    in_process = True  # runs tasks in the runtime's own process, as SequentialExecutor does

    def __init__(self):
        super().__init__(8)

    def submit(self, spec, output):
        from concurrent.futures import Future

        from ledgerflow.task import run_task

        future = Future()
        future.set_result(run_task(spec, output))
        return future


def count_batches(monkeypatch) -> list[tuple[int, int]]:
    """(finished tasks, write transactions) of each commit_tasks call (its other records
    are the 'running' rows of tasks that started)."""
    batches: list[tuple[int, int]] = []
    from ledgerflow import writes

    commit, write = writes.commit_tasks, Ledger.write
    inside = [0]

    def counting_write(self):
        inside[0] += 1
        return write(self)

    def counting_commit(ledger, records, logs=()):
        inside[0] = 0
        result = commit(ledger, records, logs)
        batches.append((sum(r.status != "running" for r in records), inside[0]))
        return result

    monkeypatch.setattr(Ledger, "write", counting_write)
    monkeypatch.setattr(writes, "commit_tasks", counting_commit)
    return batches


def test_tasks_finishing_together_share_a_transaction(db_path, monkeypatch):
    from ledgerflow.runtime import Runtime

    flow = load_flow(FLOWS / "engine" / "foreach.py", "ForeachFlow")
    ledger = Ledger.open(db_path)
    batches = count_batches(monkeypatch)
    Runtime(flow, ledger, {}, executor=RunsAtSubmit(), quiet=True, echo_logs=False).run()
    assert all(writes == 1 for _, writes in batches)  # each batch is one transaction
    finished = [n for n, _ in batches if n]
    assert sum(finished) == 9  # start, 6 items, join, end: each committed once
    # The 6 foreach tasks, started in one round, finish in one transaction.
    assert finished == [1, 6, 1, 1]


def test_tasks_ending_one_by_one_share_a_transaction_when_nothing_starts_between(
    db_path, monkeypatch
):
    """A task's row is committed as it starts; the outcomes of tasks that end while nothing
    new can start wait for the next commit: here the 6 foreach tasks, run by threads and
    ending one by one, are written with the join's start, whatever their timing. (The run
    also commits SAVE_EVERY seconds after a task ended and with the output's flush: set
    far off here, so only what the run needs decides.)"""
    from ledgerflow import runtime
    from ledgerflow.executors import ThreadExecutor

    monkeypatch.setattr(runtime, "SAVE_EVERY", 1e6)
    monkeypatch.setattr(runtime, "LOG_FLUSH_EVERY", 1e6)
    flow = load_flow(FLOWS / "engine" / "foreach.py", "ForeachFlow")
    ledger = Ledger.open(db_path)
    batches = count_batches(monkeypatch)
    outcome = runtime.Runtime(flow, ledger, {}, executor=ThreadExecutor(8), quiet=True,
                              echo_logs=False).run()  # fmt: skip
    assert outcome.status == "succeeded"
    # start's row; its outcome with the 6 rows; their outcomes with the join's row; the
    # join's with end's; end's
    assert batches == [(0, 1), (1, 1), (6, 1), (1, 1), (1, 1)]


def test_a_foreach_task_starts_with_a_small_commit_its_siblings_outcomes_wait(db_path, monkeypatch):
    """A foreach's tasks need none of their siblings' outcomes: each start commits the new
    rows alone (cheap), and the outcomes go in large batches, with the first start that
    needs them (a child's) or the run's end. Here work -> again -> join over 60 items, 8
    slots, each task done as it is submitted (so which tasks end together is certain)."""
    from ledgerflow import runtime

    monkeypatch.setattr(runtime, "SAVE_EVERY", 1e6)  # the clock out of the way
    monkeypatch.setattr(runtime, "LOG_FLUSH_EVERY", 1e6)
    flow = load_flow(FLOWS / "wide" / "items_flow.py", "ItemsFlow")
    ledger = Ledger.open(db_path)
    batches = count_batches(monkeypatch)
    outcome = runtime.Runtime(flow, ledger, {"n": 60}, executor=RunsAtSubmit(), quiet=True,
                              echo_logs=False).run()  # fmt: skip
    assert outcome.status == "succeeded"
    assert all(writes == 1 for _, writes in batches)
    # start's; 56 work tasks' with the first `again` tasks (their children); the last 4
    # work tasks' and 52 again tasks' with the last again tasks; then the last 8 with the
    # join's start; the join's; end's. Without the wait, one batch per round of 8.
    assert [n for n, _ in batches if n] == [1, 56, 56, 8, 1, 1]
    assert len(batches) == 19
    rows = query(db_path, "select step, status, count(*) from task group by step, status")
    assert sorted(rows) == [("again", "succeeded", 60), ("end", "succeeded", 1),
                            ("join", "succeeded", 1), ("start", "succeeded", 1),
                            ("work", "succeeded", 60)]  # fmt: skip


def test_a_deduplicated_artifact_is_written_once(db_path, monkeypatch):
    from ledgerflow.runtime import Runtime

    flow = load_flow(FLOWS / "engine" / "dedup.py", "DedupFlow")
    ledger = Ledger.open(db_path)
    blob_writes: list[str] = []
    from ledgerflow.blobstore import BlobStore

    original = BlobStore.put

    def counting(self, conn, blob):
        new = original(self, conn, blob)
        if new and blob.raw_size > 1_000_000:
            blob_writes.append(blob.sha)
        return new

    monkeypatch.setattr(BlobStore, "put", counting)
    Runtime(flow, ledger, {}, executor=SequentialExecutor(), quiet=True, echo_logs=False).run()
    assert len(blob_writes) == 1  # the 10 MB value: once, though three tasks hold it
