"""Every task in a process of its own (the default executor): isolation as Metaflow gives it,
output captured from anywhere in the task's process and stored as it comes, and runs or
tasks that die leaving a ledger that says what happened."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledgerflow import Run, namespace
from ledgerflow.ledger import Ledger

from .helpers import FLOWS, query, run_flow

ISOLATION = FLOWS / "isolation"


def _run(db_path: Path, flow: str, *args: str, check: int = 0) -> Run:
    run_flow(ISOLATION / flow, *args, db=db_path, check=check)
    namespace(None)
    run_id = query(db_path, "select run_id from runs order by created_at desc limit 1")[0][0]
    return Run(f"{flow_name(flow)}/{run_id}", ledger=db_path)


def flow_name(flow: str) -> str:
    return {"isolated.py": "IsolatedFlow", "outputs.py": "OutputsFlow",
            "misbehaving.py": "MisbehavingFlow", "spin.py": "SpinFlow",
            "holder.py": "HolderFlow", "cpu.py": "CpuFlow",
            "leftovers.py": "LeftoversFlow", "forever.py": "ForeverFlow"}[flow]  # fmt: skip


def test_concurrent_tasks_see_only_their_own_process_state(db_path, tmp_path):
    run = _run(db_path, "isolated.py", "--max-workers", "4")
    data = run["join"].task.data
    # What Metaflow 2.19.39 records for this flow (each task a fresh process):
    assert data.counts == [1, 1, 1, 1]  # module globals start afresh
    assert data.envs_before == [None, None, None, None]  # os.environ too
    assert data.envs == ["0", "1", "2", "3"]
    assert data.paths == [["/nowhere/0"], ["/nowhere/1"], ["/nowhere/2"], ["/nowhere/3"]]
    assert data.draws == [0.8444218515250481, 0.13436424411240122, 0.9560342718892494,
                          0.23796462709189137]  # fmt: skip
    assert data.cwd_after == str(tmp_path)  # a step's chdir stays in its task


def test_the_thread_executor_shares_the_process_as_documented(db_path):
    run = _run(db_path, "isolated.py", "--executor", "thread", "--max-workers", "4")
    assert max(run["join"].task.data.counts) > 1  # one module, shared by the tasks


def test_output_from_threads_subprocesses_fds_and_logging_is_the_tasks_log(db_path):
    run = _run(db_path, "outputs.py")
    task = run["start"].task
    out, err = task.stdout, task.stderr
    for line in ("from print", "from a thread of the step", "from a subprocess",
                 "from os.write on fd 1"):  # fmt: skip
        assert f"{line}\n" in out
    for line in ("to stderr", "from os.write on fd 2", "INFO from logging"):
        assert f"{line}\n" in err
    assert "to stderr" not in out and "from print" not in err  # the streams stay apart


def test_output_reaches_the_terminal_prefixed_line_by_line(db_path):
    proc = run_flow(ISOLATION / "outputs.py", db=db_path, top=())
    lines = [line for line in proc.stdout.splitlines() if "from a subprocess" in line]
    assert len(lines) == 1 and "/start/1] from a subprocess" in lines[0]


def _start_holder(db_path: Path, pids: Path, *args: str) -> subprocess.Popen[str]:
    """HolderFlow running, both its tasks holding (their pids are files in `pids`)."""
    (pids / "hold").touch()
    cmd = [sys.executable, str(ISOLATION / "holder.py"), "--db", str(db_path), "--quiet",
           "run", "--pids", str(pids), *args]  # fmt: skip
    # (faulthandler: a run that hangs is made to show where: _communicate)
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    # Ctrl-C as at a terminal: a suite started in the background (`.ci/run &` from a script)
    # runs with SIGINT ignored, which its children inherit and Python then keeps ignoring.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=_default_sigint)  # fmt: skip
    deadline = time.time() + 30
    while len(_task_pids(pids)) < 2:
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    return proc


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _communicate(proc: subprocess.Popen[str], seconds: float, when: str) -> tuple[str, str]:
    """proc.communicate(); if the run has not ended in time, fail with where each of its
    threads is (faulthandler's dump on SIGABRT) and its process tree. (It showed why the
    SIGINT case hung in suites started in the background: the run ignored SIGINT.)"""
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        rows = subprocess.run(["ps", "-eo", "pid,ppid,stat,wchan:24,etime,args"],
                              capture_output=True, text=True).stdout.splitlines()  # fmt: skip
        family, tree = {proc.pid}, []
        for row in rows[1:] * 3:  # (a child can be listed before its parent)
            pid, ppid = (int(x) for x in row.split()[:2])
            if (pid in family or ppid in family) and row not in tree:
                family.add(pid)
                tree.append(row)
        proc.send_signal(signal.SIGABRT)
        time.sleep(1)
        for pid in family:  # (any of them may hold the run's pipes open)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            err = "(its pipes stayed open)"
        listing = "\n".join([rows[0], *tree])
        raise AssertionError(
            f"the run did not end {when}; processes:\n{listing}\n"
            f"its stderr (threads' stacks last):\n{err[-6000:]}"
        ) from None


def _task_pids(pids: Path) -> list[int]:
    return [int(p.name.split(".")[1]) for p in pids.iterdir() if p.name != "hold"]


def _gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _wait_for_output(db_path: Path, text: str) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        rows = query(
            db_path,
            "select count(*) from log where log_text(task_id, stream) like ?",
            (f"%{text}%",),
        )
        if rows[0][0]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never reached the ledger")


def test_kill_9_of_the_run_keeps_the_running_tasks_and_their_output(db_path, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = _start_holder(db_path, pids)
    _wait_for_output(db_path, "holding 1")  # output is committed while the task runs
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)  # the pipe closes: no task process holds it
    assert all(_gone(pid) for pid in _task_pids(pids))  # the tasks died with their run
    rows = query(db_path, "select task_id, status from tasks where step = 'hold'")
    assert sorted(status for _, status in rows) == ["running", "running"]
    Ledger.forget(db_path)
    Ledger.open(db_path).close()  # a writer's open marks the dead run and its tasks crashed
    assert query(db_path, "select status from runs") == [("crashed",)]
    namespace(None)
    run = Run(f"HolderFlow/{query(db_path, 'select run_id from runs')[0][0]}", ledger=db_path)
    tasks = sorted(run["hold"], key=lambda t: t.index)
    assert [t.stdout for t in tasks] == ["holding 0\n", "holding 1\n"]
    assert not any(t.finished for t in tasks)
    (pids / "hold").unlink()
    run_flow(ISOLATION / "holder.py", db=db_path, command="resume")
    assert query(db_path, "select status from runs order by created_at") == [
        ("crashed",), ("succeeded",)]  # fmt: skip


def test_kill_9_of_one_task_fails_that_attempt_and_retry_completes_the_run(db_path, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = _start_holder(db_path, pids, "--with", "retry:times=1,minutes_between_retries=0")
    victim = next(p for p in pids.iterdir() if p.name.startswith("0."))
    victim.unlink()
    os.kill(int(victim.name.split(".")[1]), signal.SIGKILL)
    deadline = time.time() + 30
    while not any(p.name.startswith("0.") for p in pids.iterdir()):  # the retry started
        assert time.time() < deadline
        time.sleep(0.05)
    (pids / "hold").unlink()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "killed by signal 9 (SIGKILL)" in err and "Traceback" not in err
    rows = query(db_path, "select foreach_index, attempt, status, exception from tasks "
                          "where step = 'hold' order by foreach_index, attempt")  # fmt: skip
    assert [r[:3] for r in rows] == [(0, 0, "failed"), (0, 1, "succeeded"), (1, 0, "succeeded")]
    assert "killed by signal 9 (SIGKILL)" in rows[0][3]
    stored = query(
        db_path,
        "select log_text(l.task_id, l.stream) from log l join task t on t.id = l.task_id "
        "where t.step = 'hold' and l.stream = 'stdout' order by t.id",
    )
    assert [r[0] for r in stored] == ["holding 0\n", "holding 1\n", "holding 0\n"]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_fork_server_fails_the_run_in_one_line(db_path, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = _start_holder(db_path, pids)
    server = _parent(_task_pids(pids)[0])
    assert server != proc.pid
    os.kill(server, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)  # before: the run hung, or exited 0 at once
    assert proc.returncode == 1, err
    assert "fork server" in err and "killed by signal 9" in err and "Traceback" not in err
    assert all(_gone(pid) for pid in _task_pids(pids))  # its tasks died with it
    rows = query(db_path, "select status, exception from tasks where step = 'hold'")
    assert [r[0] for r in rows] == ["failed", "failed"]
    assert all("fork server" in r[1] for r in rows)
    assert query(db_path, "select status from runs") == [("failed",)]
    (pids / "hold").unlink()
    run_flow(ISOLATION / "holder.py", db=db_path, command="resume")
    assert query(db_path, "select status from runs order by created_at") == [
        ("failed",), ("succeeded",)]  # fmt: skip


@pytest.mark.parametrize(
    "how, code, status",
    [("SIGTERM", 143, "stopped by SIGTERM"), ("SIGINT", 130, "interrupted by the user")],
)
def test_sigterm_and_ctrl_c_stop_the_tasks_and_record_them(db_path, tmp_path, how, code, status):
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = _start_holder(db_path, pids)
    _wait_for_output(db_path, "holding 1")
    proc.send_signal(getattr(signal, how))
    out, err = _communicate(proc, 30, f"within 30 s of {how}")
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert all(_gone(pid, 1.0) for pid in _task_pids(pids))
    assert query(db_path, "select status from runs") == [("failed",)]
    rows = query(db_path, "select status, exception from tasks where step = 'hold'")
    assert [r[0] for r in rows] == ["interrupted", "interrupted"]
    assert all(status in r[1] for r in rows)
    stored = query(db_path, "select log_text(l.task_id, l.stream) from log l join task t on "
                            "t.id = l.task_id "
                            "where t.step = 'hold' and l.stream = 'stdout'")  # fmt: skip
    assert sorted(r[0] for r in stored) == ["holding 0\n", "holding 1\n"]


def test_a_timeout_stops_a_busy_loop_and_catch_applies(db_path):
    run = _run(db_path, "spin.py")
    task = run["start"].task
    assert task.data.failure.type == "ledgerflow.exceptions.TimeoutException"
    assert "timed out after 1 seconds" in task.data.failure.exception
    assert run.successful


def test_a_segfault_fails_only_its_task(db_path):
    proc = run_flow(ISOLATION / "misbehaving.py", "--how", "segfault", db=db_path, check=1)
    assert "crashed with signal 11 (SIGSEGV)" in proc.stderr and "Traceback" not in proc.stderr
    rows = query(db_path, "select foreach_index, status from tasks where step = 'act' "
                          "order by foreach_index")  # fmt: skip
    assert rows == [(0, "succeeded"), (1, "failed"), (2, "succeeded")]
    assert query(db_path, "select status from runs") == [("failed",)]


def test_os_exit_in_a_step_fails_its_task_with_the_exit_code(db_path):
    proc = run_flow(ISOLATION / "misbehaving.py", "--how", "exit", db=db_path, check=1)
    assert "exited with code 3" in proc.stderr and "Internal error" not in proc.stderr
    assert query(db_path, "select status from runs") == [("failed",)]


def test_a_keyboardinterrupt_raised_by_a_step_fails_its_task_saying_so(db_path):
    proc = run_flow(ISOLATION / "misbehaving.py", "--how", "interrupt", db=db_path, check=1)
    assert "stopped on an uncaught KeyboardInterrupt" in proc.stderr
    stderr = query(db_path, "select log_text(l.task_id, l.stream) from log l join task t on "
                            "t.id = l.task_id where t.step = 'act' and t.status = 'failed' "
                            "and l.stream = 'stderr'")  # fmt: skip
    assert "raise KeyboardInterrupt" in stderr[0][0]  # its traceback is the task's stderr
    rows = query(db_path, "select foreach_index, status from tasks where step = 'act' "
                          "order by foreach_index")  # fmt: skip
    assert rows == [(0, "succeeded"), (1, "failed"), (2, "succeeded")]


def test_exit_handlers_of_the_runs_process_are_not_run_by_its_tasks(db_path):
    """What the run's process made before its tasks were forked from it (a module-level
    TemporaryDirectory every task writes into) is cleaned up once, by the run's own exit;
    logging's exit handler, which only flushes each task's copies, runs in every task."""
    proc = run_flow(ISOLATION / "shared_exit.py", db=db_path)
    run = _run_id_run(db_path, "SharedExitFlow")
    assert run.successful
    assert run["join"].task.data.files == ["0", "1", "2"]  # no task deleted the folder
    assert not os.path.exists(run["start"].task.data.folder)  # the run's exit did
    assert proc.stdout.count("the run's exit handler") == 1  # printed by the run alone
    items = run["start"].task.data.items
    for task in run["write"]:
        assert task.stdout == f"logged by {items[task.index]}\n"  # flushed as the task ended


def _run_id_run(db_path: Path, flow: str) -> Run:
    namespace(None)
    run_id = query(db_path, "select run_id from runs order by created_at desc limit 1")[0][0]
    return Run(f"{flow}/{run_id}", ledger=db_path)


@pytest.mark.parametrize("executor", ["process", "spawn"])
def test_a_task_ends_after_what_its_step_left_for_the_exit(db_path, tmp_path, executor):
    """As a Metaflow task's process exits: non-daemon threads (a pool's work too) are waited
    for, atexit handlers run (logging's flush, finalizers' clean-ups, the step's own), what
    they print is the task's output, and the task ends after them."""
    run = _run(db_path, "leftovers.py", "--folder", str(tmp_path), "--executor", executor)
    assert run.successful
    join = run["join"].task.data
    assert join.found == {"thread": "thread", "pool": "pool", "atexit": "atexit"}
    assert join.tmp_left == []  # the TemporaryDirectory's finalizer ran at the task's exit
    items = run["start"].task.data.items
    for task in run["leave"]:
        item = items[task.index]
        assert task.stdout.splitlines() == ([] if item == "finalize" else [f"left: {item}"])
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []


def test_a_thread_that_never_ends_is_stopped_at_the_steps_timeout(db_path):
    proc = run_flow(ISOLATION / "forever.py", db=db_path, check=1)
    assert "did not stop at its @timeout" in proc.stderr
    assert query(db_path, "select status from tasks where step = 'start'") == [("failed",)]


@pytest.mark.parametrize("how", ["fork", "thread"])
def test_a_step_that_forks_or_leaves_a_thread_running_still_finishes(db_path, how):
    run = _run(db_path, "misbehaving.py", "--how", how)
    assert run.successful
    assert run["join"].task.data.done == sorted(["fine", how, "fine"])
    assert query(db_path, "select count(*) from tasks where step = 'act'") == [(3,)]


def test_cpu_bound_tasks_run_at_the_same_time_in_their_own_processes(db_path):
    run = _run(db_path, "cpu.py")
    data = run["join"].task.data
    assert len(set(data.pids)) == 2
    (a_start, a_end), (b_start, b_end) = data.spans
    assert a_start < b_end and b_start < a_end  # their half-seconds of CPU overlapped


def test_spawn_runs_each_task_in_a_fresh_interpreter(db_path):
    run = _run(db_path, "isolated.py", "--executor", "spawn", "--max-workers", "4")
    assert run["join"].task.data.counts == [1, 1, 1, 1]


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2048,
                    reason="cannot hold 1,100 descriptors here")  # fmt: skip
def test_a_run_from_a_process_holding_over_1024_descriptors(db_path):
    """Descriptors past 1,024 (a notebook kernel, a long session): select() could not
    watch the fork server's sockets, and the run failed at its first task."""
    proc = subprocess.run(
        [sys.executable, str(FLOWS / "plain" / "many_fds.py"), str(FLOWS / "engine" / "foreach.py"),
         "--db", str(db_path), "--quiet", "run"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert query(db_path, "select status from runs") == [("succeeded",)]
