"""gc racing runs that are starting: a blob a run wrote when it was created (its IncludeFile)
is unreferenced until the run's first task commits, and gc must not take it."""

from __future__ import annotations

import os
import threading

import pytest

from ledgerflow import upkeep
from ledgerflow.exceptions import LedgerflowError
from ledgerflow.ledger import Ledger

from .helpers import FLOWS, query, run_flow

FLOW = FLOWS / "hostile" / "include_flow.py"


@pytest.mark.slow
def test_gc_in_a_loop_never_deletes_a_starting_runs_blobs(db_path, tmp_path):
    Ledger(db_path).close()
    stop = threading.Event()
    collected = []

    def collect() -> None:
        ledger = Ledger(db_path)
        while not stop.is_set():
            try:
                collected.append(upkeep.gc(ledger).blobs_deleted)
            except LedgerflowError:  # a run in progress: refused, as it should be
                pass
        ledger.close()

    gc_thread = threading.Thread(target=collect)
    gc_thread.start()
    try:
        for i in range(4):
            data = tmp_path / f"data{i}.bin"
            data.write_bytes(os.urandom(8 << 20))
            run_flow(FLOW, "--data", str(data), db=db_path)
    finally:
        stop.set()
        gc_thread.join()
    assert collected  # gc did run between the runs
    assert query(db_path, "select status, count(*) from run group by status") == [("succeeded", 4)]
