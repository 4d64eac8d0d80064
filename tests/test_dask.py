"""--executor dask: tasks on a Dask cluster, the ledger staying on the run's machine.

One LocalCluster (2 single-threaded worker processes) per test module, started in an empty
folder with LEDGERFLOW_FORBID_LEDGER set, so any ledger open on a worker fails; flows run
through the real CLI, pointed at it with --dask-scheduler."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import FLOWS, load_artifact, query, run_flow

distributed = pytest.importorskip("distributed")

DASK = FLOWS / "dask"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    from ledgerflow.executors.dask import local_cluster

    empty = tmp_path_factory.mktemp("dask-worker-cwd")
    here = os.getcwd()
    os.chdir(empty)  # the workers' working directory: no ledger there
    try:
        cluster = local_cluster(n_workers=2, local_directory=str(empty))
    finally:
        os.chdir(here)
    client = distributed.Client(cluster)
    try:
        yield cluster, client, empty
    finally:
        client.close()
        cluster.close()


def dask_args(cluster) -> tuple[str, ...]:
    return ("--executor", "dask", "--dask-scheduler", cluster[0].scheduler_address)


def latest_run(db: Path) -> str:
    return query(db, "select run_id from runs order by created_at desc limit 1")[0][0]


def artifacts_by_sha(db: Path, run_id: str) -> dict[tuple, str]:
    """(step, foreach index, name) -> SHA of every artifact of the run's tasks."""
    rows = query(db, "select t.step, t.foreach_index, a.name, a.sha from artifact a "
                     "join task t on t.id = a.task_id join run r on r.id = t.run_id "
                     "where r.run_id = ?", (run_id,))  # fmt: skip
    return {(step, index, name): sha for step, index, name, sha in rows}


def test_same_artifacts_as_the_default_executor(cluster, tmp_path):
    local_db, dask_db = tmp_path / "local.db", tmp_path / "dask.db"
    run_flow(DASK / "fanout.py", db=local_db)
    run_flow(DASK / "fanout.py", *dask_args(cluster), db=dask_db)
    local = artifacts_by_sha(local_db, latest_run(local_db))
    remote = artifacts_by_sha(dask_db, latest_run(dask_db))
    assert len(remote) > 20 and remote == local
    run_id = latest_run(dask_db)
    assert load_artifact(dask_db, run_id, "end", "total") == 50_004
    assert load_artifact(dask_db, run_id, "meet", "sides") == ["L", "R"]
    assert load_artifact(dask_db, run_id, "gather", "values") == [
        "aaa50000",
        "bbb50000",
        "ccc50000",
        "ddd50000",
    ]
    # every task ran on a worker (the run's machine leaves the column empty)
    assert query(dask_db, "select count(*), count(host) from task")[0] == (11, 11)
    assert query(local_db, "select count(host) from task")[0] == (0,)


def test_output_captured_on_the_worker_and_stored(cluster, tmp_path):
    db = tmp_path / "l.db"
    proc = run_flow(DASK / "fanout.py", *dask_args(cluster), db=db, top=())
    logs = {(index, stream): text for index, stream, text in query(
        db, "select t.foreach_index, l.stream, log_text(l.task_id, l.stream) from task t "
                "join log l on l.task_id = t.id "
            "where t.step = 'work'")}  # fmt: skip
    for index, item in enumerate("abcd"):
        assert logs[(index, "stdout")] == f"working on {item}\n"
        assert logs[(index, "stderr")] == f"warning about {item}\n"
        assert f"] working on {item}" in proc.stdout  # echoed by the run as it came


def test_worker_hostname_recorded_on_the_task(cluster, tmp_path):
    from ledgerflow import Flow, namespace

    db = tmp_path / "l.db"
    run_flow(DASK / "fanout.py", *dask_args(cluster), db=db)
    worker_hosts = set(cluster[1].run(socket.gethostname).values())
    assert {h for (h,) in query(db, "select distinct host from task")} == worker_hosts
    os.environ["LEDGERFLOW_DB"] = str(db)
    namespace(None)
    task = next(iter(Flow("FanoutFlow").latest_run["work"]))
    assert task.metadata_dict["host"] in worker_hosts


def test_workers_never_open_the_ledger(cluster, tmp_path):
    _, client, worker_cwd = cluster
    db = tmp_path / "l.db"
    run_flow(DASK / "peek.py", *dask_args(cluster), db=db)
    run_id = latest_run(db)
    # The step ran in a worker's process, in the workers' folder, with the guard on...
    assert load_artifact(db, run_id, "start", "pid") in client.run(os.getpid).values()
    assert load_artifact(db, run_id, "start", "cwd") == str(worker_cwd)
    assert load_artifact(db, run_id, "start", "forbid") == "1"
    assert not [f for f in load_artifact(db, run_id, "start", "files_here") if ".db" in f]
    # ...where the guard stops any ledger open: the Client API inside a step fails.
    assert query(db, "select status from task where step = 'peek'") == [("caught",)]
    error = load_artifact(db, run_id, "end", "error_text")
    assert "may not open a ledger" in error and "LEDGERFLOW_FORBID_LEDGER" in error

    # No worker process holds the ledger file open.
    def open_files() -> list[str]:
        return [os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")]

    for files in client.run(open_files).values():
        assert not [f for f in files if f.startswith(str(db))]


def test_the_guard_refuses_a_ledger_open(tmp_path, monkeypatch):
    from ledgerflow.exceptions import LedgerError
    from ledgerflow.ledger import Ledger

    monkeypatch.setenv("LEDGERFLOW_FORBID_LEDGER", "1")
    with pytest.raises(LedgerError, match="may not open a ledger"):
        Ledger(tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


def test_a_failing_task_under_catch(cluster, tmp_path):
    db = tmp_path / "l.db"
    run_flow(DASK / "caught.py", *dask_args(cluster), db=db)
    run_id = latest_run(db)
    assert query(db, "select status, exception_type from task where step = 'risky'") == [
        ("caught", "builtins.ValueError")
    ]
    assert load_artifact(db, run_id, "end", "seen") == "builtins.ValueError"
    log = query(db, "select log_text(l.task_id, l.stream) from log l join task t on t.id = l.task_id "
                    "where t.step = 'risky' and l.stream = 'stdout'")[0][0]  # fmt: skip
    assert "@catch caught an exception" in log and "bad input on the worker" in log
    proc = run_flow(DASK / "caught.py", "--fail_at_end", "true", *dask_args(cluster), db=db,
                    check=1)  # fmt: skip
    assert "KeyError: 'uncaught on the worker'" in proc.stderr
    # the flow's code went by value, and its traceback still names the user's file and line
    assert f'File "{DASK / "caught.py"}", line' in proc.stderr
    assert query(
        db,
        "select t.status from task t join run r on r.id = t.run_id "
        "where step = 'end' and r.run_id = ?",
        (latest_run(db),),
    ) == [("failed",)]


def test_resume_a_run_that_failed_on_dask(cluster, tmp_path):
    db, flag = tmp_path / "l.db", tmp_path / "fail-now"
    flag.touch()
    proc = run_flow(DASK / "resumable.py", "--fail_flag", str(flag), *dask_args(cluster), db=db,
                    check=1)  # fmt: skip
    assert "item 2 failed on purpose" in proc.stderr
    origin = latest_run(db)
    flag.unlink()
    run_flow(DASK / "resumable.py", *dask_args(cluster), db=db, command="resume")
    resumed = latest_run(db)
    assert resumed != origin
    assert query(db, "select status, origin_run_id from runs where run_id = ?", (resumed,)) == [
        ("succeeded", origin)
    ]
    cloned = query(db, "select step, foreach_index from task t join run r on r.id = t.run_id "
                       "where r.run_id = ? and origin_pathspec is not null "
                       "order by step, foreach_index", (resumed,))  # fmt: skip
    assert cloned == [("start", None), ("work", 0), ("work", 2)]
    assert load_artifact(db, resumed, "join", "values") == [10, 20, 30]


def test_a_worker_killed_mid_task_is_retried(cluster, tmp_path):
    db = tmp_path / "l.db"
    run_flow(DASK / "killed.py", *dask_args(cluster), db=db)
    run_id = latest_run(db)
    attempts = query(db, "select attempt, status, exception from task where step = 'work' "
                         "order by attempt")  # fmt: skip
    assert [(a, s) for a, s, _ in attempts] == [(0, "failed"), (1, "succeeded")]
    assert "Dask worker running the task died" in attempts[0][2]
    assert load_artifact(db, run_id, "work", "survived") == "from start on attempt 1"
    cluster[1].wait_for_workers(2, timeout=60)  # the nanny restarts it for later tests


def test_without_dask_one_line_says_what_to_install(tmp_path):
    # A `distributed` that cannot be imported, first on the path: as if Dask were missing.
    fake = tmp_path / "nodask" / "distributed"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named distributed')\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    proc = subprocess.run([sys.executable, str(DASK / "caught.py"), "--db", str(tmp_path / "l.db"),
                           "run", "--executor", "dask"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: --executor dask needs Dask: pip install 'ledgerflow[dask]'"
    ]


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("LEDGERFLOW_DASK_SCHEDULER", f"tcp://127.0.0.1:{port}")
    proc = run_flow(DASK / "caught.py", "--executor", "dask", db=tmp_path / "l.db", check=1,
                    top=())  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert "Traceback" not in proc.stderr


def test_dask_executor_from_python(cluster, tmp_path):
    """DaskExecutor(client) passed to the runtime, the flow loaded from its file."""
    from ledgerflow.executors.dask import DaskExecutor
    from ledgerflow.ledger import Ledger
    from ledgerflow.runtime import Runtime
    from ledgerflow.task import load_flow_class

    cls = load_flow_class(str(DASK / "resumable.py"), "_ledgerflow_flow", "DaskResumableFlow")
    ledger = Ledger.open(tmp_path / "py.db")
    executor = DaskExecutor(cluster[1])
    outcome = Runtime(cls, ledger, {"fail_flag": ""}, executor=executor, quiet=True).run()
    assert outcome.status == "succeeded"
    assert load_artifact(tmp_path / "py.db", outcome.run_id, "join", "values") == [10, 20, 30]
    assert cluster[1].status == "running"  # a client passed in stays open
    # ...and the executor serves a second run
    again = Runtime(cls, ledger, {"fail_flag": ""}, executor=executor, quiet=True).run()
    assert again.status == "succeeded" and again.run_id != outcome.run_id


def running_work(db: Path) -> bool:
    import sqlite3

    try:
        # the task's own first line, not just its row (written before it reaches a worker)
        return bool(query(db, "select 1 from task t join log l on l.task_id = t.id "
                              "where t.step = 'work' and log_text(l.task_id, l.stream) like 'waiting%'"))  # fmt: skip
    except sqlite3.OperationalError:  # the run has not made its tables yet
        return False


def test_a_lost_scheduler_fails_the_run_and_resume_completes_it(cluster, tmp_path):
    import time

    from ledgerflow.executors.dask import local_cluster

    db, hold = tmp_path / "l.db", tmp_path / "hold"
    hold.touch()
    doomed = local_cluster(n_workers=1)
    proc = subprocess.Popen(
        [sys.executable, str(DASK / "waits.py"), "--db", str(db), "--quiet", "run", "--hold",
         str(hold), "--executor", "dask", "--dask-scheduler", doomed.scheduler_address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not running_work(db):
            time.sleep(0.05)
        doomed.sync(doomed.scheduler.close)  # the scheduler goes away mid-task
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        for nanny in doomed.workers.values():  # no scheduler to say goodbye to: just end them
            nanny.process.process.kill()
        with contextlib.suppress(Exception):
            doomed.close(timeout=1)
    assert proc.returncode == 1
    assert f"lost the Dask scheduler at {doomed.scheduler_address}; `resume` continues" in err
    assert "Traceback" not in err
    origin = latest_run(db)
    assert query(db, "select status from runs where run_id = ?", (origin,)) == [("failed",)]
    hold.unlink()
    run_flow(DASK / "waits.py", *dask_args(cluster), db=db, command="resume")
    resumed = latest_run(db)
    assert query(db, "select status from runs where run_id = ?", (resumed,)) == [("succeeded",)]
    assert load_artifact(db, resumed, "join", "values") == [2, 4]


def test_timeout_stops_a_step_on_a_worker(cluster, tmp_path):
    db = tmp_path / "l.db"
    proc = run_flow(DASK / "timeout.py", *dask_args(cluster), db=db, check=1)
    assert "Step 'stuck' timed out after 1 seconds (@timeout)" in proc.stderr
    assert query(db, "select status, exception_type from task where step = 'stuck'") == [
        ("failed", "ledgerflow.exceptions.TimeoutException")
    ]
