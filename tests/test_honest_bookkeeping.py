"""A run that cannot start its tasks is marked failed in the ledger, with the reason said
on the command line (issue 28, "Honest bookkeeping")."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from .helpers import FLOWS, query, run_flow

pytest.importorskip("distributed")


def test_a_run_that_cannot_reach_its_dask_scheduler_is_marked_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    db = tmp_path / "l.db"
    proc = run_flow(FLOWS / "dask" / "caught.py", "--executor", "dask", "--dask-scheduler",
                    f"tcp://127.0.0.1:{port}", db=db, check=1, top=())  # fmt: skip
    assert "cannot reach the Dask scheduler" in proc.stderr and "Traceback" not in proc.stderr
    assert query(db, "select status from run") == [("failed",)]
    assert query(db, "select finished_at is not null from run") == [(1,)]
    doctor = subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(db), "doctor"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
