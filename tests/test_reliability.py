"""Crashes, interrupts and concurrency: the ledger stays whole and nothing is lost.

The kill loop SIGKILLs runs at random moments (while tasks compute, while blobs are written,
while joins commit) and checks the file after each kill."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path

import pytest

from ledgerflow.client import Run, namespace
from ledgerflow.ledger import Ledger

from .helpers import FLOWS, query, run_flow

RELIABILITY = FLOWS / "reliability"


def start(flow: str, db, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(RELIABILITY / flow), "--db", str(db), "--quiet", "run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A suite started in the background (`cmd &`) ignores SIGINT, and children inherit
        # that: give the flow the default, as a terminal would, so Ctrl-C reaches it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def assert_whole(db) -> None:
    """The file passes integrity_check and every recorded task is complete and loadable."""
    if not Path(db).exists():
        # Killed before it made the ledger (a loaded machine starts Python slowly): nothing
        # to check, and connecting here would create an empty file with no tables.
        return
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert conn.execute("pragma foreign_key_check").fetchall() == []
        # every task row was written with its whole artifact set in one transaction
        # (`name` is an artifact of every task; a task row without it would be partial)
        incomplete = conn.execute(
            "select count(*) from task t where not exists (select 1 from artifact a where "
            "a.task_id = t.id and a.name = 'name') and t.status = 'succeeded'"
        ).fetchone()[0]
        assert incomplete == 0
        missing = conn.execute(
            "select count(*) from artifact where sha not in (select sha from blob)"
        ).fetchone()[0]
        assert missing == 0
        # a task row is written when the task starts: one still 'running' belongs to a run
        # that has not ended (here: killed, and not yet seen by a writer)
        assert conn.execute(
            "select count(*) from task t join run r on r.id = t.run_id "
            "where t.status = 'running' and r.status != 'running'"
        ).fetchone() == (0,)
    finally:
        conn.close()


def test_sigkill_at_random_moments_never_corrupts_and_resume_completes(db_path):
    rng = random.Random(1234)
    killed = 0
    for _ in range(10):
        proc = start("killable.py", db_path, "--width", "40", "--nap", "0.3", "--max-workers", "8")
        time.sleep(rng.uniform(0.15, 1.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(60)
        assert_whole(db_path)
    assert killed >= 5
    Ledger.forget(db_path)
    ledger = Ledger.open(db_path)  # a writable open marks the dead runs crashed
    statuses = [r[0] for r in query(db_path, "select status from runs")]
    # ... and the tasks they were running when killed, which are in the ledger
    task_states = {r[0] for r in query(db_path, "select status from tasks")}
    assert "running" not in task_states and "crashed" in task_states
    # (a kill during start-up lands before the run exists: fewer crashed runs than kills)
    assert set(statuses) <= {"succeeded", "crashed"} and statuses.count("crashed") >= 3
    namespace(None)
    for (run_id,) in query(db_path, "select run_id from runs"):
        run = Run(f"KillableFlow/{run_id}", ledger=db_path)
        for step in run:
            for task in step:
                if not task.successful:
                    continue
                # every finished task is intact and loadable
                if step.id == "work":
                    assert len(task["payload"].data) == 1024 * 1024
                if step.id in ("start", "work"):
                    assert task.data.items == list(range(40))
                if step.id == "join":
                    assert task.data.squares == [i * i for i in range(40)]
    crashed = query(
        db_path, "select run_id from runs where status = 'crashed' order by created_at desc limit 1"
    )[0][0]
    run_flow(RELIABILITY / "killable.py", "--origin-run-id", crashed, db=db_path, command="resume")
    resumed = query(db_path, "select run_id, status from runs order by created_at desc limit 1")
    assert resumed[0][1] == "succeeded"
    assert Run(f"KillableFlow/{resumed[0][0]}", ledger=db_path).data.total == sum(
        i * i for i in range(40)
    )
    assert_whole(db_path)
    ledger.close()


def test_ctrl_c_stops_cleanly_with_exit_130(db_path):
    proc = start("sleepy.py", db_path, "--seconds", "60")
    deadline = time.time() + 30
    while time.time() < deadline:  # wait until the foreach tasks are running
        try:
            rows = query(db_path, "select count(*) from tasks where step = 'start'")
        except sqlite3.OperationalError:  # the file exists before its schema does
            rows = [(0,)]
        if rows[0][0]:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert query(db_path, "select status from runs") == [("failed",)]
    assert query(
        db_path, "select status, count(*) from tasks where step = 'nap' group by status"
    ) == [("interrupted", 4)]
    assert_whole(db_path)


def test_four_writers_and_a_searching_reader_lose_nothing(db_path):
    run_flow(RELIABILITY / "killable.py", "--width", "2", db=db_path)  # the file exists
    stop = threading.Event()
    reader_errors: list[str] = []
    reads = [0]

    def reader() -> None:
        from ledgerflow import search, sql

        while not stop.is_set():
            try:
                sql("select count(*) from artifacts", ledger=db_path)
                search("payload", ledger=db_path, limit=5)
                reads[0] += 1
            except Exception as e:  # noqa: BLE001 - any error is a failure here
                reader_errors.append(repr(e))

    thread = threading.Thread(target=reader)
    thread.start()
    procs = [start("killable.py", db_path, "--width", "20", "--nap", "0.01") for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    stop.set()
    thread.join()
    for proc, (_out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "locked" not in err
    assert not reader_errors and reads[0] > 0
    rows = query(db_path, "select run_id, status from runs")
    assert len(rows) == 5 and {r[1] for r in rows} == {"succeeded"}
    for run_id, _ in rows[1:]:
        count = query(
            db_path, "select count(*) from tasks where run_id = ? and step = 'work'", (run_id,)
        )
        assert count == [(20,)]
    assert_whole(db_path)


def test_a_plain_sqlite3_reader_without_busy_timeout_never_sees_locked(db_path):
    run_flow(RELIABILITY / "killable.py", "--width", "2", db=db_path)
    procs = [start("killable.py", db_path, "--width", "20", "--nap", "0.01") for _ in range(4)]
    errors, queries = [], 0
    conn = sqlite3.connect(db_path, timeout=0)  # no busy timeout at all
    while any(p.poll() is None for p in procs):
        try:
            conn.execute("select count(*) from runs").fetchall()
            conn.execute(
                "select count(*), max(value) from artifacts where name='square'"
            ).fetchall()
            conn.execute("select status, count(*) from tasks group by status").fetchall()
            queries += 1
        except sqlite3.OperationalError as e:
            errors.append(str(e))
    conn.close()
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    assert not errors and queries > 0


@pytest.mark.parametrize("executor", ["process", "thread"])
def test_64_concurrent_tasks_keep_their_output_current_and_artifacts(db_path, executor):
    run_flow(RELIABILITY / "chatty.py", "--max-workers", "64", "--executor", executor,
             db=db_path)  # fmt: skip
    namespace(None)
    run_id = query(db_path, "select run_id from runs")[0][0]
    run = Run(f"ChattyFlow/{run_id}", ledger=db_path)
    tasks = list(run["talk"])
    assert len(tasks) == 64
    where = "pid" if executor == "process" else "thread"
    assert len({getattr(t.data, where) for t in tasks}) > 1  # really concurrent
    for task in tasks:
        me = task.data.me
        assert task.index == me
        assert task.stdout == "".join(f"task {me} line {i}\n" for i in range(20))
        assert task.data.seen_task_id == task.id
        assert task.data.seen_pathspec == task.pathspec
    assert run["join"].task.data.mes == list(range(64))


def test_a_read_only_ledger_file_gives_a_clear_error(tmp_path):
    db = tmp_path / "ro.db"
    run_flow(RELIABILITY / "killable.py", "--width", "1", db=db)
    Ledger.forget(db)
    os.chmod(db, 0o444)
    try:
        if os.access(db, os.W_OK):
            pytest.skip("running as root: file permissions do not stop writes")
        proc = run_flow(RELIABILITY / "killable.py", db=db, check=1)
        assert "read-only" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        os.chmod(db, 0o644)


def test_a_full_disk_is_one_clear_error_and_nothing_half_written(db_path, monkeypatch):
    run_flow(RELIABILITY / "killable.py", "--width", "1", db=db_path)  # the file exists
    monkeypatch.setenv("LEDGERFLOW_TEST_MAX_PAGES", "2000")  # ~16 MB: fills on the 2nd task
    proc = run_flow(RELIABILITY / "grows.py", db=db_path, check=1)
    assert "is full" in proc.stderr and "Traceback" not in proc.stderr
    monkeypatch.delenv("LEDGERFLOW_TEST_MAX_PAGES")
    assert_whole(db_path)
    Ledger.forget(db_path)
    Ledger.open(db_path)  # marks the run crashed if it could not even be marked failed
    statuses = query(db_path, "select status from runs where flow = 'GrowsFlow'")
    assert statuses in ([("failed",)], [("crashed",)])
    done = query(
        db_path, "select count(*) from tasks where step = 'fill' and status = 'succeeded'"
    )[0][0]
    assert done < 4  # the disk filled up before every task could be written


def test_a_ledger_deleted_under_a_running_flow_is_a_clear_error(db_path):
    proc = start("sleepy.py", db_path, "--seconds", "1.5")
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if query(db_path, "select count(*) from tasks where step = 'start'")[0][0]:
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.1)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{db_path}{suffix}")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "was deleted or moved" in err and "Traceback" not in err


def test_a_run_from_another_host_is_dead_once_its_heartbeat_is_stale(db_path):
    from datetime import datetime, timedelta

    from ledgerflow.client import Run

    run_flow(RELIABILITY / "killable.py", "--width", "1", db=db_path)
    run_id = query(db_path, "select run_id from runs")[0][0]

    def beat(minutes_ago: float) -> None:
        when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        conn = sqlite3.connect(db_path)
        conn.execute(
            "update run set status = 'running', host = 'another-host', pid = 1, heartbeat_at = ?",
            (when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),),
        )
        conn.commit()
        conn.close()
        Ledger.forget(db_path)

    beat(1)  # a recent heartbeat: still running elsewhere
    Ledger.open(db_path)
    assert query(db_path, "select status from runs") == [("running",)]
    assert Run(f"KillableFlow/{run_id}", ledger=db_path).status == "running"
    beat(60)  # an hour without one: that run is dead
    assert Run(f"KillableFlow/{run_id}", ledger=db_path).status == "crashed"
    Ledger.open(db_path)
    assert query(db_path, "select status from runs") == [("crashed",)]
