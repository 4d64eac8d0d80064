"""Helpers for tests: run flows through the real CLI, read ledgers with plain sqlite3."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOWS = Path(__file__).resolve().parent / "flows"
EXAMPLES = ROOT / "examples"


def run_flow(
    flow_file: str | Path,
    *args: str,
    db: Path,
    command: str = "run",
    check: int | None = 0,
    top: tuple[str, ...] = ("--quiet",),
) -> subprocess.CompletedProcess[str]:
    """Run `python FLOW --db DB [top] COMMAND ARGS` and check its exit code."""
    cmd = [sys.executable, str(flow_file), "--db", str(db), *top, command, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check is not None and proc.returncode != check:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}, expected {check}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from plain sqlite3, as any SQLite tool would see them."""
    conn = sqlite3.connect(db)
    try:
        add_log_text(conn)
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def load_artifact(db: Path, run_id: str, step: str, name: str, index: int | None = None) -> Any:
    """An artifact's value, read with plain SQL for the row and the ledger for the blob."""
    from ledgerflow.ledger import Ledger

    # the final attempt of each task, as the Client API shows
    sql = (
        "select sha from all_artifacts a join tasks t using (flow, run_id, step, task_id, "
        "attempt) where a.run_id = ? and a.step = ? and a.name = ? and t.attempt = (select "
        "max(attempt) from tasks m where m.run_id = t.run_id and m.flow = t.flow and "
        "m.step = t.step and m.task_id = t.task_id)"
    )
    params: tuple[Any, ...] = (run_id, step, name)
    if index is not None:
        sql += " and t.foreach_index = ?"
        params += (index,)
    from ledgerflow.internals import INTERNAL_ARTIFACTS

    if name in INTERNAL_ARTIFACTS:  # built from the task's columns: read them as a user does
        return _internal(db, run_id, step, name, index)
    rows = query(db, sql, params)
    assert len(rows) == 1, f"{len(rows)} artifacts {step}/{name} in run {run_id}"
    return Ledger.open(db).load(rows[0][0])


def _internal(db: Path, run_id: str, step: str, name: str, index: int | None) -> Any:
    from ledgerflow.client import Task

    sql = "select flow, task_id from tasks where run_id = ? and step = ?"
    params: tuple[Any, ...] = (run_id, step)
    if index is not None:
        sql += " and foreach_index = ?"
        params += (index,)
    rows = sorted(set(query(db, sql, params)))
    assert len(rows) == 1, f"{len(rows)} tasks of {step} in run {run_id}"
    flow, task_id = rows[0]
    return Task(f"{flow}/{run_id}/{step}/{task_id}", ledger=db)[name].data


def latest_run_id(db: Path, flow: str) -> str:
    rows = query(
        db, "select run_id from runs where flow = ? order by created_at desc limit 1", (flow,)
    )
    assert rows, f"no run of {flow} in {db}"
    return rows[0][0]


def add_log_text(conn: sqlite3.Connection) -> None:
    """SQL function log_text(task_id, stream): a stream's text, as stored in compressed
    pieces since schema 8 (what Task.stdout/.stderr read)."""
    from ledgerflow.logstore import read_text

    conn.create_function("log_text", 2, lambda pk, stream: read_text(conn, pk, stream))
