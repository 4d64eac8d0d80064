"""The task path: every task process reaped before the run exits, artifact names the ledger
cannot keep refused inside the task, @timeout carried in the spec, the fork hooks the fork
server runs by hand, and the executor table."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerflow.flowspec import ForeachFrame
from ledgerflow.records import ArtifactRecord
from ledgerflow.taskspec import (
    TaskResult,
    TaskSpec,
    result_from_wire,
    result_to_wire,
    spec_from_wire,
    spec_to_wire,
)
from tests.helpers import latest_run_id, load_artifact, query, run_flow


def _write(tmp_path: Path, body: str, name: str = "flow.py") -> Path:
    path = tmp_path / name
    path.write_text("from ledgerflow import FlowSpec, step, timeout\n" + textwrap.dedent(body))
    return path


# -- every task process is reaped ----------------------------------------------------------

LINGERING = """
import io, os, sys, time

class Lingering(io.TextIOBase):
    # Burns CPU at each flush: the last flush comes after the task sent its result, while
    # the run commits it, ends and stops the fork server.
    def __init__(self, inner, seconds):
        self.inner, self.seconds = inner, seconds
    def write(self, text):
        return self.inner.write(text)
    def flush(self):
        self.inner.flush()
        end = time.process_time() + self.seconds
        while time.process_time() < end:
            pass

class ReapFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)
    @step
    def end(self):
        self.pid = os.getpid()
        sys.stdout = Lingering(sys.stdout, 0.4)

if __name__ == "__main__":
    ReapFlow()
"""


def test_every_task_process_is_reaped_so_rusage_counts_its_cpu(tmp_path: Path) -> None:
    """A task still exiting when the run stops (here: 0.4 s of CPU in each flush of its
    output, the last one after its result was sent) is waited for and reaped before the
    run's process exits, so the run's rusage holds all of its CPU time. Before, the fork
    server SIGKILLed it and exited without reaping it: its CPU went missing."""
    flow = _write(tmp_path, LINGERING)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_flow(flow, db=tmp_path / "l.db")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert cpu >= 0.8, f"the run and its descendants used {cpu:.2f} s of CPU, not >= 0.8"
    (status,) = query(tmp_path / "l.db", "select status from tasks where step = 'end'")[0]
    assert status == "succeeded"
    # Not even a zombie left for init to reap (a slow reaper kept them past the run's end:
    # why test_sigterm_and_ctrl_c_stop_the_tasks_and_record_them failed now and then).
    pid = load_artifact(tmp_path / "l.db", latest_run_id(tmp_path / "l.db", "ReapFlow"), "end",
                        "pid")  # fmt: skip
    if os.path.exists("/proc"):
        assert not os.path.exists(f"/proc/{pid}")


# -- artifact names the ledger cannot keep (issue 30, item 9) ------------------------------

BAD_NAMES = """
class BadNameFlow(FlowSpec):
    @step
    def start(self):
        self.kept = 1
        self.next(self.work)
    @step
    def work(self):
        setattr(self, NAME, 2)
        self.fine = 3
        self.next(self.end)
    @step
    def end(self):
        pass

if __name__ == "__main__":
    BadNameFlow()
"""


@pytest.mark.parametrize("executor", ["process", "thread"])
@pytest.mark.parametrize(("name", "why"), [("s\udcff", "lone surrogate"),
                                           ("x\0y", "NUL character")])  # fmt: skip
def test_an_artifact_name_the_ledger_cannot_keep_fails_its_task(
    tmp_path: Path, executor: str, name: str, why: str
) -> None:
    """setattr(self, "s\\udcff", 2) used to pass as a finished task and then kill the run
    at its commit ("Internal error: UnicodeEncodeError", the task row left `running`);
    "x\\0y" was stored as "x". Now the task fails with one line naming the artifact, the
    run records it and ends failed, and what came before is kept."""
    flow = _write(tmp_path, BAD_NAMES.replace("NAME", repr(name)))
    db = tmp_path / "b.db"
    proc = run_flow(flow, "--executor", executor, db=db, check=1)
    assert "Internal error" not in proc.stderr and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "cannot store an artifact" in line]
    assert len(lines) == 1, proc.stderr
    assert f"artifact named {name!r}: the name" in lines[0] and why in lines[0]
    run_id = latest_run_id(db, "BadNameFlow")
    rows = query(db, "select step, status, exception_type from tasks where run_id = ? "
                     "order by task_id", (run_id,))  # fmt: skip
    assert rows == [("start", "succeeded", None),
                    ("work", "failed", "ledgerflow.exceptions.ArtifactError")]  # fmt: skip
    names = {r[0] for r in query(db, "select name from all_artifacts where run_id = ?",
                                 (run_id,))}  # fmt: skip
    assert "kept" in names and "x" not in names and "fine" not in names
    assert query(db, "select status from runs where run_id = ?", (run_id,)) == [("failed",)]


# -- @timeout carried in the spec -------------------------------------------------------


def test_timeout_is_read_once_into_the_task_spec(tmp_path: Path) -> None:
    """The runtime reads @timeout once per step into the spec; the task's alarm and the
    executor's deadline both use it."""
    flow = _write(tmp_path, """
        import time
        class SlowFlow(FlowSpec):
            @timeout(seconds=1)
            @step
            def start(self):
                time.sleep(30)
                self.next(self.end)
            @step
            def end(self):
                pass

        if __name__ == "__main__":
            SlowFlow()
    """)  # fmt: skip
    proc = run_flow(flow, db=tmp_path / "t.db", check=1)
    assert "timed out after 1 seconds (@timeout)" in proc.stderr

    from ledgerflow.ledger import Ledger
    from ledgerflow.runtime import Runtime

    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        module = importlib.import_module("flow")
        runtime = Runtime(module.SlowFlow, Ledger.open(tmp_path / "u.db"), {})
        assert runtime._step_settings("start") == (0, 1.0)
        assert runtime._step_settings("end") == (0, None)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("flow", None)


# -- fork hooks the fork server runs by hand -------------------------------------------

HOOKS = """
import os, sys
from ledgerflow import FlowSpec, step

CALLS = []
os.register_at_fork(before=lambda: CALLS.append("before"),
                    after_in_child=lambda: CALLS.append("child"))

class HookFlow(FlowSpec):
    @step
    def start(self):
        from ledgerflow.executors import forkserver
        self.raw = bool(forkserver._LIBC_FORK)
        self.calls = list(CALLS)
        self.next(self.end)
    @step
    def end(self):
        pass

if __name__ == "__main__":
    HookFlow()
"""


LOGGING_FROM_A_THREAD = """
import threading
from ledgerflow import FlowSpec, step

class LogFlow(FlowSpec):
    @step
    def start(self):
        import logging
        done = []
        worker = threading.Thread(target=lambda: done.append(logging.getLogger("a.thread")))
        worker.start()
        worker.join(10)
        self.logged = bool(done)
        self.next(self.end)
    @step
    def end(self):
        pass

if __name__ == "__main__":
    LogFlow()
"""


@pytest.mark.parametrize("executor", ["process", "thread"])
def test_a_thread_of_a_step_can_use_logging(tmp_path: Path, executor: str) -> None:
    """logging's module lock is free in a task's process: a thread the step starts can
    take it (before, the fork server took it around each fork and the task kept it held)."""
    flow = tmp_path / "logflow.py"
    flow.write_text(LOGGING_FROM_A_THREAD)
    db = tmp_path / "g.db"
    run_flow(flow, "--executor", executor, db=db)
    assert load_artifact(db, latest_run_id(db, "LogFlow"), "start", "logged") is True


def test_fork_hooks_registered_after_ledgerflow_run_in_each_task(tmp_path: Path) -> None:
    """The fork server forks with libc's fork(2) (skipping CPython's after-fork work) only
    when it knows every Python fork hook; those registered once ledgerflow is imported (a
    library the flow uses, e.g. fsspec's) are recorded and run in each task as os.fork
    would run them."""
    flow = tmp_path / "hooks.py"
    flow.write_text(HOOKS)
    db = tmp_path / "h.db"
    run_flow(flow, db=db)
    run_id = latest_run_id(db, "HookFlow")
    assert load_artifact(db, run_id, "start", "raw") is (sys.platform.startswith("linux"))
    # The fork server was forked once (before, child), then the task (before, child).
    assert load_artifact(db, run_id, "start", "calls")[-2:] == ["before", "child"]


def test_raw_fork_is_refused_when_a_library_loaded_before_ledgerflow(tmp_path: Path) -> None:
    """Hooks registered before ledgerflow was imported cannot be seen: with a module from
    outside the standard library loaded first, the fork server uses os.fork."""
    code = "import zstandard, ledgerflow.forkhooks as f; print(f.raw_fork_is_safe())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})  # fmt: skip
    assert out.stdout.strip() == "False"
    code = "import json, ledgerflow.forkhooks as f; print(f.raw_fork_is_safe())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "True"


# -- the executor contract -----------------------------------------------------------------


def test_one_table_names_every_executor_and_the_base_class_declares_the_contract() -> None:
    from ledgerflow import executors
    from ledgerflow.executors import EXECUTORS, Executor, executor_class, make_executor

    for name, (_module, cls_name, description) in EXECUTORS.items():
        if name == "dask":
            pytest.importorskip("distributed")
        cls = executor_class(name)
        assert cls.__name__ == cls_name and issubclass(cls, Executor) and description
        assert getattr(executors, cls_name) is cls
    for attr in ("in_process", "prepare", "from_options", "submit", "interrupt", "shutdown"):
        assert hasattr(Executor, attr)
    thread = make_executor("thread", 3, dask_scheduler=None)
    try:
        assert thread.max_workers == 3 and thread.in_process
        thread.prepare(object)  # nothing to do, but declared
    finally:
        thread.shutdown()
    assert make_executor("sequential", 7).max_workers == 1
    process = make_executor("process", 2)
    assert process.max_workers == 2 and not process.in_process
    process.shutdown()
    with pytest.raises(ValueError):
        make_executor("thread", 0)


# -- compact results ---------------------------------------------------------------------


def test_a_compacted_result_expands_to_the_same_artifacts_in_the_same_order() -> None:
    """A task's process sends the artifacts it passed on unchanged as names only; the
    runtime rebuilds exactly the map the task made (records, inherited flags, order)."""
    from ledgerflow.records import ArtifactRecord
    from ledgerflow.taskoutput import carried_records, compact_result, expand_result
    from ledgerflow.taskspec import TaskResult, TaskSpec

    def record(name: str, sha: str, inherited: bool = False) -> ArtifactRecord:
        return ArtifactRecord(name, sha * 64, "json", "builtins.int", 1, 1, "1", inherited)

    parent = {"a": record("a", "1"), "b": record("b", "2"), "_foreach_stack": record("x", "3"),
              "name": record("name", "4")}  # fmt: skip
    spec = TaskSpec("f.py", "m", "F", "l.db", "F", "1", 1, "work", "2", inputs=[parent],
                    constants={"name": record("name", "4"), "p": record("p", "5")})  # fmt: skip
    carried = carried_records(spec)
    assert list(carried) == ["a", "b", "name", "p"] and all(r.inherited for r in carried.values())
    made = {"a": carried["a"], "b": record("b", "6"), "name": carried["name"],
            "p": carried["p"], "new": record("new", "7")}  # fmt: skip
    result = TaskResult(spec, "succeeded", "t0", "t1", artifacts=dict(made))
    compact_result(result, spec)
    assert result.carried == ["a", "name", "p"] and list(result.artifacts) == ["b", "new"]
    expand_result(result, spec)
    assert result.artifacts == made and list(result.artifacts) == list(made)
    assert result.carried == []
    start = TaskSpec("f.py", "m", "F", "l.db", "F", "1", 1, "start", "1",
                     constants={"p": record("p", "5")})  # fmt: skip
    assert carried_records(start)["p"].inherited is False  # a start task's own parameters


def test_the_stdlib_fork_hooks_of_modules_loaded_first_are_run_by_hand(monkeypatch) -> None:
    """A standard-library module loaded before ledgerflow registered its fork hook unseen;
    after a raw fork the child runs it by hand, as os.fork would have."""
    import threading

    from ledgerflow import forkhooks

    calls: list[str] = []
    monkeypatch.setattr(forkhooks, "_EARLY", frozenset({"threading"}))
    monkeypatch.setattr(forkhooks, "_HOOKS", [(None, None, lambda: calls.append("recorded"))])
    monkeypatch.setattr(threading, "_after_fork", lambda: calls.append("threading"))
    forkhooks.run_after_in_child()
    assert calls == ["threading", "recorded"]


def test_a_fork_from_one_thread_skips_only_the_hooks_that_reinitialise_locks(monkeypatch) -> None:
    """Forked from a process with one thread, the child's locks and thread records are
    right as copied: threading's and logging's lock hooks are left out; random's reseed and
    every recorded hook still run."""
    import logging
    import random
    import threading

    from ledgerflow import forkhooks

    calls: list[str] = []
    monkeypatch.setattr(forkhooks, "_EARLY", frozenset({"threading", "random"}))
    monkeypatch.setattr(threading, "_after_fork", lambda: calls.append("threading"))
    monkeypatch.setattr(random._inst, "seed", lambda: calls.append("random"))
    logging_hook = lambda: calls.append("logging")  # noqa: E731
    monkeypatch.setattr(logging, "_after_at_fork_child_reinit_locks", logging_hook)
    monkeypatch.setattr(forkhooks, "_HOOKS", [(None, None, logging_hook),
                                              (None, None, lambda: calls.append("recorded"))])  # fmt: skip
    forkhooks.run_after_in_child(one_thread=True)
    assert calls == ["random", "recorded"]
    calls.clear()
    forkhooks.run_after_in_child()
    assert calls == ["threading", "random", "logging", "recorded"]
    if sys.platform.startswith("linux"):
        code = ("import threading, time, ledgerflow.forkhooks as f; a = f.one_thread(); "
                "threading.Thread(target=time.sleep, args=(1,), daemon=True).start(); "
                "print(a, f.one_thread())")  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)  # fmt: skip
        assert out.stdout.split() == ["True", "False"]


STDIN = """
import os, sys

def null_stdin():
    return sys.stdin.read() == "" and os.path.samestat(os.fstat(0), os.stat(os.devnull))

class StdinFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")
    @step
    def work(self):
        self.null = null_stdin()
        self.next(self.join)
    @step
    def join(self, inputs):
        self.nulls = [i.null for i in inputs]
        self.next(self.end)
    @step
    def end(self):
        self.null = null_stdin()

if __name__ == "__main__":
    StdinFlow()
"""


def test_every_task_reads_an_empty_stdin_from_dev_null(tmp_path: Path) -> None:
    """A task's stdin is /dev/null (the fork server opens it once; every task gets it on
    descriptor 0), whatever the run's own stdin is."""
    flow = _write(tmp_path, STDIN)
    db = tmp_path / "s.db"
    subprocess.run([sys.executable, str(flow), "--db", str(db), "--quiet", "run"], check=True,
                   input="typed at the terminal\n", text=True, capture_output=True)  # fmt: skip
    run_id = latest_run_id(db, "StdinFlow")
    assert load_artifact(db, run_id, "join", "nulls") == [True, True, True]
    assert load_artifact(db, run_id, "end", "null") is True


def _recv_into(sock: object) -> bytes | None:
    """recv_frame_into as a task reads its spec (into a buffer made once), as bytes."""
    from ledgerflow.executors.wire import recv_frame_into

    fd = sock if type(sock) is int else sock.fileno()  # type: ignore[attr-defined]
    got = recv_frame_into(fd, bytearray(65536))
    return None if got is None else bytes(got)


@pytest.mark.parametrize("reader", ["recv_frame", "recv_frame_into"])
def test_a_frame_is_read_whole_however_it_arrives(reader: str) -> None:
    """A task reads its spec as one frame: whole in the first read (the usual case), with
    its header split across reads, larger than one read or than the task's buffer, or None
    when the runtime closed the socket first."""
    import pickle
    import socket
    import threading
    import time

    from ledgerflow.executors.wire import pickled_frame, send_frame

    if reader == "recv_frame":
        from ledgerflow.executors.wire import recv_frame
    else:
        recv_frame = _recv_into  # type: ignore[assignment]

    for size in (0, 100, 65_500, 70_000, 3_000_000):
        value = b"v" * size
        for split_at in (None, 3, 8, 20):
            mine, theirs = socket.socketpair()

            def send(split_at: int | None = split_at, mine: socket.socket = mine,
                     value: bytes = value) -> None:  # fmt: skip
                frame = bytes(pickled_frame(value))
                if split_at is None:
                    mine.sendall(frame)
                else:
                    mine.sendall(frame[:split_at])
                    time.sleep(0.01)
                    mine.sendall(frame[split_at:])
                mine.close()

            sender = threading.Thread(target=send)
            sender.start()
            assert pickle.loads(recv_frame(theirs)) == value
            sender.join()
            theirs.close()
    mine, theirs = socket.socketpair()
    mine.close()
    assert recv_frame(theirs) is None
    mine, theirs = socket.socketpair()
    send_frame(mine, b"result")
    assert recv_frame(theirs) == b"result"


def test_frames_go_through_bare_descriptors_whole():
    """A task's process reads its spec and sends its result through the socket's bare
    descriptor: a result larger than the socket's buffer arrives whole (partial writes
    continued), and a descriptor reads as its socket does."""
    import socket
    import threading

    from ledgerflow.executors.wire import recv_frame, send_frame

    for size in (0, 5, 3_000_000):
        value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        mine, theirs = socket.socketpair()
        got: list[bytes | None] = []
        fd = theirs.fileno()
        reader = threading.Thread(target=lambda fd=fd, got=got: got.append(recv_frame(fd)))
        reader.start()
        send_frame(mine.fileno(), value)
        reader.join()
        assert got == [value]
        mine.close()
        assert recv_frame(theirs.fileno()) is None
        theirs.close()


# -- the spec and the result on the wire --------------------------------------------------

_text = st.text(max_size=12)
_records = st.dictionaries(
    _text,
    st.builds(ArtifactRecord, _text, st.text(alphabet="0123456789abcdef", min_size=64,
                                             max_size=64), st.sampled_from(["json", "pickle"]),
              _text, st.integers(0, 2**40),
              st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                        _text, st.binary(max_size=8)),
              _text, st.booleans()),
    max_size=4,
)  # fmt: skip
_frames = st.lists(st.builds(ForeachFrame, _text, _text, st.integers(1, 9), st.integers(0, 8),
                             _text), max_size=2)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(inputs=st.lists(_records, max_size=2), constants=_records, stack=_frames,
       stacks=st.lists(_frames, max_size=2), item=st.one_of(st.none(), st.tuples(
           st.sampled_from(["json", "pickle"]), st.binary(max_size=8))),
       pks=st.lists(st.integers(1, 10**6), max_size=3), attempt=st.integers(0, 3),
       timeout=st.one_of(st.none(), st.floats(0.1, 1e4)), tags=st.lists(_text, max_size=2),
       user=st.one_of(st.none(), _text), params=st.frozensets(_text, max_size=3))  # fmt: skip
def test_a_spec_reads_back_equal_from_its_wire_form(inputs, constants, stack, stacks, item,
                                                     pks, attempt, timeout, tags, user,
                                                     params) -> None:  # fmt: skip
    """What a task's process receives (plain values, taskspec.spec_to_wire) is the spec the
    runtime made, field for field, records and foreach frames included."""
    preloaded = {r.sha: ("json", b"1") for refs in inputs for r in refs.values()}
    spec = TaskSpec("f.py", "m", "F", "l.db", "F", "1", 7, "work", "2", attempt, 3, bool(pks),
                    inputs, pks, ["a"] * len(stacks), stacks, stack, item, constants, preloaded,
                    params, 1000, user, tags, None if user else "9", timeout)  # fmt: skip
    back = spec_from_wire(spec_to_wire(spec))
    assert back == spec
    assert all(type(f) is ForeachFrame for f in back.foreach_stack)
    assert back.inputs == spec.inputs and list(map(list, back.inputs)) == list(map(list, inputs))


def test_a_spec_marshal_cannot_write_goes_pickled() -> None:
    """A record value of a type marshal does not write (a subclass of str) sends the whole
    spec pickled; it reads back the same."""

    spec = TaskSpec("f.py", "m", "F", "l.db", "F", "1", 1, "work", "2",
                    constants={"p": ArtifactRecord("p", "0" * 64, "json", "t", 1,
                                                   _Text("x"))})  # fmt: skip
    wire = spec_to_wire(spec)
    assert wire[:1] == b"P"
    back = spec_from_wire(wire)
    assert back == spec and type(back.constants["p"].value) is _Text


class _Text(str):
    pass


@settings(max_examples=40, deadline=None)
@given(artifacts=_records, carried=st.lists(_text, max_size=3),
       status=st.sampled_from(["succeeded", "failed", "caught"]),
       foreach=st.one_of(st.none(), _text), warnings=st.lists(_text, max_size=2),
       floats=st.booleans())  # fmt: skip
def test_a_result_reads_back_equal_from_its_wire_form(artifacts, carried, status, foreach,
                                                       warnings, floats) -> None:  # fmt: skip
    """A task's result (plain values, taskspec.result_to_wire) reads back as the task made
    it; times its process took as time.time() floats read back as clock.py's text."""
    from ledgerflow.codec import encode_blob
    from ledgerflow.flowspec import Transition
    from ledgerflow.records import CardRecord

    blob = encode_blob({"k": [1, 2]})
    transition = Transition(["b"], foreach, None, 2 if foreach else None,
                            ["1", "2"] if foreach else None,
                            [("json", b"1"), ("json", b"2")] if foreach else None, 12)  # fmt: skip
    started, finished = 1_790_000_000.25, 1_790_000_001.5
    result = TaskResult(None, status, started if floats else "t0",  # type: ignore[arg-type]
                        finished if floats else "t1", artifacts, [blob], transition,
                        "E", "boom", "tb", "f.py:3", "out", "err", warnings,
                        [CardRecord("default", None, "0" * 64, None)], None, carried)  # fmt: skip
    back = result_from_wire(result_to_wire(result))
    if floats:
        assert back.started_at == "2026-09-21T14:13:20.250000Z"
        assert back.finished_at == "2026-09-21T14:13:21.500000Z"
        result.started_at, result.finished_at = back.started_at, back.finished_at
    assert back == result
    assert back.blobs[0].frames == blob.frames and back.blobs[0].raw == blob.raw


# -- every decorator on the task path -------------------------------------------------------

EVERY_DECORATOR = """
import os
from ledgerflow import (FlowSpec, Parameter, card, catch, current, environment, retry,
                        secrets, step, timeout)

INLINE = [{"type": "inline", "id": "1", "options": {"env_vars": {"SECRET_1": "s3cr3t"}}}]


class EveryDecorator(FlowSpec):
    p = Parameter("p", default=3)
    constant = "kept"

    @step
    def start(self):
        self.items = [1, 2]
        self.big = list(range(50))
        self.next(self.work, foreach="items")

    @card
    @catch(var="failure")
    @retry(times=1, minutes_between_retries=0)
    @timeout(seconds=60)
    @environment(vars={"FROM_ENV": "yes"})
    @secrets(sources=INLINE)
    @step
    def work(self):
        if current.retry_count == 0 and self.input == 2:
            raise RuntimeError("first attempt fails")
        self.seen = [self.input, os.environ.get("FROM_ENV"), os.environ.get("SECRET_1"),
                     current.task_id is not None, current.retry_count, self.p]
        self.big = self.big  # set again, unchanged
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = sorted(i.seen for i in inputs)
        self.merge_artifacts(inputs, include=["items"])
        self.next(self.end)

    @step
    def end(self):
        self.plain = self.p + len(self.seen)


if __name__ == "__main__":
    EveryDecorator()
"""


def _run_rows(db: Path) -> tuple[list[tuple], list[tuple]]:
    run_id = latest_run_id(db, "EveryDecorator")
    tasks = query(db, "select step, task_id, attempt, status, exception_type from tasks where "
                      "run_id = ? order by step, task_id, attempt", (run_id,))  # fmt: skip
    artifacts = query(db, "select a.step, a.task_id, a.attempt, a.name, a.sha, a.inherited, "
                          "a.type, a.preview from all_artifacts a where a.run_id = ? order by "
                          "a.step, a.task_id, a.attempt, a.name", (run_id,))  # fmt: skip
    return tasks, artifacts


def test_a_step_with_every_decorator_runs_the_same_in_its_own_process(tmp_path: Path) -> None:
    """@card, @catch, @retry, @timeout, @environment and @secrets on one foreach step,
    `current` read, a parent's artifact set again unchanged, a join merging: the task path
    of a process of its own (compact spec and result, names of carried artifacts) stores
    exactly what a task in the run's process stores."""
    flow = tmp_path / "every.py"
    flow.write_text(EVERY_DECORATOR)
    rows = {}
    for executor in ("process", "thread"):
        db = tmp_path / f"{executor}.db"
        run_flow(flow, "--executor", executor, db=db)
        rows[executor] = _run_rows(db)
    assert rows["process"] == rows["thread"]
    tasks, artifacts = rows["process"]
    assert ("work", "3", 0, "failed", "builtins.RuntimeError") in tasks
    assert ("work", "3", 1, "succeeded", None) in tasks
    seen = load_artifact(tmp_path / "process.db", latest_run_id(tmp_path / "process.db",
                                                                "EveryDecorator"), "join", "seen")  # fmt: skip
    assert seen == [[1, "yes", "s3cr3t", True, 0, 3], [2, "yes", "s3cr3t", True, 1, 3]]
    inherited = {(step, name): flag for step, _, _, name, _, flag, _, _ in artifacts}
    assert inherited[("work", "big")] == 1 and inherited[("work", "constant")] == 1
    assert inherited[("work", "seen")] == 0
    # a card per attempt; a card lists the task's whole map, what it passed on included
    assert query(tmp_path / "process.db", "select count(*) from card") == [(3,)]
    from ledgerflow import Run, namespace
    from ledgerflow.cards import get_cards

    namespace(None)
    db = tmp_path / "process.db"
    work = list(Run(f"EveryDecorator/{latest_run_id(db, 'EveryDecorator')}", ledger=db)["work"])
    html = get_cards(work[0])[0].get()
    assert "constant" in html and "big" in html and "seen" in html


def test_the_fork_server_reaps_and_reports_when_the_runtime_leaves_reports_unread(
    tmp_path: Path,
) -> None:
    """The runtime may close the control socket with the server's last exit reports still
    unread: the server's next read then fails (ECONNRESET) instead of seeing b"q". It
    still stops as b"q" stops: every task reaped, its rusage report written (before, it
    exited at once, and a bench's split went missing about one run in two)."""
    import json
    import select
    import socket

    from ledgerflow.executors import forkserver
    from ledgerflow.executors.wire import CONTROL

    report = tmp_path / "rusage.json"
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # the fork server
        mine.close()
        os.environ[forkserver.RUSAGE_ENV] = str(report)
        forkserver.serve(theirs)
    theirs.close()
    try:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        task_mine, task_theirs = socket.socketpair()
        socket.send_fds(mine, [CONTROL.pack(b"r", 1, 0)], [out_w, err_w, task_theirs.fileno()])
        for fd in (out_w, err_w):
            os.close(fd)
        task_theirs.close()
        task_mine.close()  # the task reads no spec: it exits at once
        assert select.select([mine], [], [], 30)[0], "no exit report from the fork server"
        mine.close()  # the report left unread
        _, status = os.waitpid(pid, 0)
    finally:
        mine.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    shares = json.loads(report.read_text())
    assert shares["tasks_cpu"] > 0
    for fd in (out_r, err_r):
        os.close(fd)


def test_current_set_later_builds_its_values_when_first_read() -> None:
    """A task in a process of its own sets `current` lazily: nothing is built until the
    step reads it, then every field and property reads as if set at once."""
    from ledgerflow.current import current

    made: list[str] = []

    def values(task_id: str) -> dict[str, object]:
        made.append(task_id)
        return {"flow_name": "F", "run_id": "7", "step_name": "s", "task_id": task_id,
                "tags": frozenset({"t"}), "retry_count": 0}  # fmt: skip

    try:
        current._set_later(values, "3")
        assert made == []
        assert current.is_running_flow and made == ["3"]
        assert current.pathspec == "F/7/s/3" and current.tags == {"t"}
        assert current.retry_count == 0 and made == ["3"]  # built once
    finally:
        current._clear()
    assert current.pathspec is None and current.task_id is None


def test_a_spec_with_an_unhashable_record_value_still_crosses_the_wire() -> None:
    """Records are written once when equal (a hash of their fields); a value that cannot
    be hashed (a list, from a hand-made record) is written as it is, and reads back."""
    record = ArtifactRecord("p", "0" * 64, "json", "t", 1, [1, 2])
    spec = TaskSpec("f.py", "m", "F", "l.db", "F", "1", 1, "work", "2",
                    inputs=[{"p": record}], constants={"p": record})  # fmt: skip
    assert spec_from_wire(spec_to_wire(spec)) == spec
