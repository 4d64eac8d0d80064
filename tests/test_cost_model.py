"""Cost models that cannot be flaky: how many write transactions and blob writes a run makes.
(Timings live in scripts/bench.py, never in tests.)"""

from __future__ import annotations

import importlib.util
import sys

from ledgerflow.executors import SequentialExecutor, ThreadExecutor
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


def test_tasks_finishing_together_share_a_transaction(db_path, monkeypatch):
    from ledgerflow.runtime import Runtime

    flow = load_flow(FLOWS / "engine" / "foreach.py", "ForeachFlow")
    ledger = Ledger.open(db_path)
    writes = count_writes(ledger, monkeypatch)
    Runtime(flow, ledger, {}, executor=ThreadExecutor(8), quiet=True, echo_logs=False).run()
    assert writes[0] <= 9 + 3


def test_a_deduplicated_artifact_is_written_once(db_path, monkeypatch):
    from ledgerflow.runtime import Runtime

    flow = load_flow(FLOWS / "engine" / "dedup.py", "DedupFlow")
    ledger = Ledger.open(db_path)
    blob_writes: list[str] = []
    original = Ledger.put_blob

    def counting(self, conn, blob):
        new = original(self, conn, blob)
        if new and blob.raw_size > 1_000_000:
            blob_writes.append(blob.sha)
        return new

    monkeypatch.setattr(Ledger, "put_blob", counting)
    Runtime(flow, ledger, {}, executor=SequentialExecutor(), quiet=True, echo_logs=False).run()
    assert len(blob_writes) == 1  # the 10 MB value: once, though three tasks hold it
