"""The default executor: every task in a fresh process of its own, as Metaflow's are.

Where `os.fork` exists, a fork server (forkserver.py) forked from the run's process once
forks each task, so a task pays a fork, not an interpreter start. Elsewhere, and with
`--executor spawn`, each task is a fresh interpreter (`python -m ...forkserver`): slower,
just as isolated.

Per task the runtime holds the read ends of three channels: the task's stdout pipe, its
stderr pipe (file descriptors 1 and 2 in the task: prints from any thread, subprocesses and C
code all arrive), and a socket that carries the spec in and the result out. One I/O thread
here reads them all, hands output to the task's sink as it comes, and completes the task's
future when its result arrives, or when its process ends without one (a crash, a signal,
os._exit), with the reason. Tasks whose @timeout did not stop them are killed.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

from ..attempts import segfault_message
from ..exceptions import ExecutorError
from ..flowclasses import flow_class, register_flow_class
from ..taskoutput import expand_result
from ..taskspec import TaskResult, TaskSpec, result_from_wire, spec_to_wire
from . import DEFAULT_MAX_WORKERS, Executor, OutputSink, RunningTask
from .forkserver import STOP_GRACE
from .wire import CONTROL, FrameReader, framed

# How long a task may outlive its @timeout (its own SIGALRM should have stopped it) before
# the runtime kills its process, and how long Ctrl-C/SIGTERM waits before SIGKILL.
TIMEOUT_GRACE = 5.0
INTERRUPT_GRACE = 3.0


_UTF8 = codecs.getincrementaldecoder("utf-8")


class _Task(RunningTask):
    """The runtime's side of one running task process."""

    def __init__(self, key: int, spec: TaskSpec, output: OutputSink, deadline: float | None):
        super().__init__(spec, output)
        self.key, self.deadline = key, deadline
        self.reader = FrameReader()
        self.result: TaskResult | None = None
        # UTF-8 decoders of its output, made when it first prints (most tasks print nothing)
        self.decoders: dict[str, codecs.IncrementalDecoder] = {}
        self.fds: dict[str, Any] = {}  # 'stdout'/'stderr' -> fd, 'result' -> socket
        self.pid: int | None = None  # known to the spawn executor (the fork server kills by key)
        self.killed_for_timeout = False
        self.outbox = memoryview(b"")  # what is left to send of the spec


class ProcessExecutor(Executor):
    """One fresh process per task: forked from a fork server where fork exists, else a new
    interpreter."""

    start_method = "fork" if hasattr(os, "fork") else "spawn"

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS):
        super().__init__(max_workers)
        self._lock = threading.Lock()
        self._tasks: dict[int, _Task] = {}
        self._next_key = 0
        self._selector: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._server_pid: int | None = None
        self._control: socket.socket | None = None
        self._closing = False
        self._posted: list[tuple[str, int, int]] = []
        self._server_lost: str | None = None  # why the fork server is gone, if it is

    # -- the contract -----------------------------------------------------------------------

    def submit(self, spec: TaskSpec, output: OutputSink) -> Future[TaskResult]:
        self._start()
        if self._server_lost:
            raise ExecutorError(self._server_lost)
        with self._lock:
            self._next_key += 1
            key = self._next_key
        task = _Task(key, spec, output, _deadline(spec))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        mine, theirs = socket.socketpair()
        task.fds = {"stdout": out_r, "stderr": err_r, "result": mine}
        with self._lock:
            self._tasks[key] = task
        try:
            self._launch(task, [out_w, err_w, theirs.fileno()])
        except OSError as e:  # the fork server is gone (it was killed, or a bug killed it)
            with self._lock:
                self._tasks.pop(key, None)
            for fd in (out_r, err_r):
                os.close(fd)
            mine.close()
            raise ExecutorError(self._server_lost or self._lost_server(e)) from None
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
            theirs.close()
        for fd in (out_r, err_r, mine.fileno()):
            os.set_blocking(fd, False)
        frame = memoryview(framed(spec_to_wire(spec)))  # plain values: taskspec.py says why
        try:
            sent = mine.send(frame)  # all of it, unless it is large (a join's)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = len(frame)  # the process is gone: its exit completes the future
        task.outbox = frame[sent:]  # the rest is sent by the I/O thread as the task reads
        self._post(("register", key, 0))  # the I/O thread alone touches its selector
        return task.future

    def prepare(self, flow_cls: type) -> None:
        """Start the fork server now, before the run's process opens the ledger: the server
        then holds none of SQLite's per-process state for the file, so nothing has to be
        closed and reopened (a reopen by the only process with the file open makes it the
        first opener again, whose brief exclusive lock a reader with no busy timeout meets).
        Optional: the first submit starts it otherwise."""
        register_flow_class(flow_cls)
        self._start()

    def interrupt(self) -> None:
        """SIGTERM every running task, SIGKILL what is left after INTERRUPT_GRACE, and wait
        (briefly) until each one's output is in and its future complete."""
        with self._lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            self._signal(task, signal.SIGTERM)
        _wait_all(tasks, INTERRUPT_GRACE)
        for task in tasks:
            if not task.future.done():
                self._signal(task, signal.SIGKILL)
        _wait_all(tasks, INTERRUPT_GRACE)

    def shutdown(self, wait: bool = True) -> None:
        if self._thread is None:
            return
        if not wait:
            self.interrupt()
        self._closing = True
        self._wake()
        self._thread.join()
        self._thread = None
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.send(CONTROL.pack(b"q", 0, 0))
            self._control.close()  # the fork server sees it close (or the stop) and exits
        if self._server_pid is not None:
            # It reaps every task before it exits (waiting up to its STOP_GRACE for those
            # still exiting), so their CPU time counts in this process's rusage.
            _wait_pid(self._server_pid, STOP_GRACE + 4.0)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- starting tasks -------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        if self.start_method == "fork":
            self._start_fork_server()
        self._thread = threading.Thread(target=self._io_loop, name="ledgerflow-task-io",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def _start_fork_server(self) -> None:
        from .forkserver import serve

        # SEQPACKET keeps messages whole and, unlike DGRAM, tells the server when the run's
        # end closes (macOS has no SEQPACKET: there the "stop" message and the server's own
        # check of its parent serve).
        kind = getattr(socket, "SOCK_SEQPACKET", None) if sys.platform.startswith("linux") \
            else None  # fmt: skip
        mine, theirs = socket.socketpair(socket.AF_UNIX, kind or socket.SOCK_DGRAM)
        sys.stdout.flush()  # else the server, and every task, would inherit unflushed text
        sys.stderr.flush()
        from ..ledger import Ledger

        # Tasks then open the ledger with SQLite's state clean (nothing to do when the server
        # is started before the ledger is opened: see prepare()).
        Ledger.release_connections()
        pid = os.fork()
        if pid == 0:
            mine.close()
            serve(theirs)
        theirs.close()
        self._server_pid, self._control = pid, mine
        mine.setblocking(False)
        assert self._selector is not None
        self._selector.register(mine, selectors.EVENT_READ, "control")

    def _launch(self, task: _Task, fds: list[int]) -> None:
        if self._control is not None:
            socket.send_fds(self._control, [CONTROL.pack(b"r", task.key, 0)], fds)
            return
        spec = task.spec
        # A fresh interpreter: stdout/stderr are the pipes, the socket is passed by number.
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow.executors.forkserver", str(fds[2]),
             spec.flow_file, spec.flow_module, spec.class_name],
            stdin=subprocess.DEVNULL, stdout=fds[0], stderr=fds[1], pass_fds=[fds[2]],
        )  # fmt: skip
        task.pid = proc.pid
        # Results from there name the flow's classes by its module there: find them here.
        sys.modules.setdefault("_ledgerflow_flow", sys.modules[flow_class(spec).__module__])

        def wait() -> None:
            code = proc.wait()
            status = (-code) if code < 0 else (code << 8)  # as os.waitpid reports it
            self._post(("exited", task.key, status))

        threading.Thread(target=wait, name="ledgerflow-task-wait", daemon=True).start()

    def _signal(self, task: _Task, signum: int) -> None:
        if self._control is not None:
            try:
                self._control.send(CONTROL.pack(b"k", task.key, signum))
            except OSError:
                pass
            return
        if task.pid is not None and not task.future.done():
            try:
                os.kill(task.pid, signum)
            except ProcessLookupError:
                pass

    # -- the I/O thread -----------------------------------------------------------------------

    def _post(self, message: tuple[str, int, int]) -> None:
        with self._lock:
            self._posted.append(message)
            first = len(self._posted) == 1
        if first:  # else a wake-up is pending already: the I/O thread takes them all at once
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # full: a wake-up is pending anyway

    def _io_loop(self) -> None:
        try:
            while self._io_once():
                pass
        except BaseException as e:  # pragma: no cover  # noqa: BLE001 - must not hang the run
            with self._lock:
                tasks, self._tasks = list(self._tasks.values()), {}
            for task in tasks:
                if not task.future.done():
                    task.future.set_exception(e)

    def _io_once(self) -> bool:
        assert self._selector is not None
        with self._lock:
            if self._closing and not self._tasks:
                return False
            deadlines = [t.deadline for t in self._tasks.values() if t.deadline]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for key, mask in self._selector.select(timeout):
            if key.data is None:
                _drain(self._wake_r)
                with self._lock:
                    posted, self._posted = self._posted, []
                for message in posted:
                    self._on_message(message)
            elif key.data == "control":
                self._read_control()
            else:
                task, stream = key.data
                if mask & selectors.EVENT_WRITE:
                    self._send_spec(task)
                if mask & selectors.EVENT_READ and self._read(task, stream) \
                        and task.result is not None:  # fmt: skip
                    self._finish(task)
        self._enforce_deadlines()
        return True

    def _read_control(self) -> None:
        assert self._control is not None
        while True:
            try:
                data = self._control.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._server_gone()
                return
            _kind, key, value = CONTROL.unpack(data)  # b"x": a task's process exited
            self._on_message(("exited", key, value))

    def _lost_server(self, error: BaseException | None = None) -> str:
        status = None
        deadline = time.monotonic() + 1.0  # its socket closes a moment before it is waitable
        while self._server_pid is not None and status is None and time.monotonic() < deadline:
            try:
                pid, found = os.waitpid(self._server_pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                status = found
            else:
                time.sleep(0.01)
        if status is not None and os.WIFSIGNALED(status):
            how = f"killed by signal {os.WTERMSIG(status)}"
        elif status is not None and os.WIFEXITED(status):
            how = f"exited with code {os.WEXITSTATUS(status)}"
        else:
            how = f"{type(error).__name__}: {error}" if error else "its socket closed"
        return (f"ledgerflow's fork server (pid {self._server_pid}) is gone ({how}), so no task "
                "can start; the run stops here and `resume` continues it")  # fmt: skip

    def _server_gone(self) -> None:
        """The control socket closed while the run goes on: the fork server died (killed,
        or a bug). Its tasks died with it (PDEATHSIG); they fail with the reason, and the
        next submit stops the run (ExecutorError) instead of waiting forever."""
        assert self._control is not None and self._selector is not None
        self._selector.unregister(self._control)
        self._server_lost = self._lost_server()
        with self._lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            self._finish(task, lost=self._server_lost)

    def _on_message(self, message: tuple[str, int, int]) -> None:
        kind, key, value = message
        with self._lock:
            task = self._tasks.get(key)
        if task is None:
            return
        if kind == "register":
            assert self._selector is not None
            for stream, fd in task.fds.items():
                events = selectors.EVENT_READ
                if stream == "result" and task.outbox:
                    events |= selectors.EVENT_WRITE
                self._selector.register(fd, events, (task, stream))
        elif kind == "exited":
            self._finish(task, exit_status=value)

    def _send_spec(self, task: _Task) -> None:
        sock = task.fds.get("result")
        if sock is None:
            return
        try:
            sent = sock.send(task.outbox)
        except BlockingIOError:
            return
        except OSError:
            sent = len(task.outbox)  # the process is gone: its exit completes the future
        task.outbox = task.outbox[sent:]
        if not task.outbox:
            assert self._selector is not None
            self._selector.modify(sock, selectors.EVENT_READ, (task, "result"))

    def _read(self, task: _Task, stream: str) -> bool:
        """Read what is there of one channel; False once nothing more came (for now)."""
        fd = task.fds.get(stream)
        if fd is None:
            return False
        try:
            data = fd.recv(65536) if stream == "result" else os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._close(task, stream)
            return False
        if stream != "result":
            decoder = task.decoders.get(stream)
            if decoder is None:
                decoder = task.decoders[stream] = _UTF8("replace")
            task.output.write(stream, decoder.decode(data))
        elif task.result is None:
            frame = task.reader.feed(data)
            if frame is not None:
                task.result = _loads_result(task, frame)
        return True

    def _close(self, task: _Task, stream: str) -> None:
        fd = task.fds.pop(stream, None)
        if fd is None:
            return
        assert self._selector is not None
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError):
            pass  # never registered: the task ended before its registration was read
        if isinstance(fd, int):
            os.close(fd)
        else:
            fd.close()

    def _finish(self, task: _Task, exit_status: int | None = None,
                lost: str | None = None) -> None:  # fmt: skip
        """The task is over: take the rest of its output and complete its future."""
        if task.future.done():
            return
        # Whatever the process wrote before its result or its end is in the pipes by now
        # (anything a leftover subprocess writes later is not the task's).
        for stream in ("stdout", "stderr", "result"):
            while task.fds.get(stream) is not None and self._read(task, stream):
                pass
        for stream in list(task.fds):
            self._close(task, stream)
        for stream, decoder in task.decoders.items():
            task.output.write(stream, decoder.decode(b"", final=True))
        with self._lock:
            self._tasks.pop(task.key, None)
        result = task.result
        if result is None:
            result = task.failed(lost) if lost else self._crashed(task, exit_status)
        result.spec = task.spec
        expand_result(result, task.spec)
        task.future.set_result(result)

    def _crashed(self, task: _Task, status: int | None) -> TaskResult:
        if task.killed_for_timeout:
            why = (f"the task did not stop at its @timeout; its process was killed "
                   f"{TIMEOUT_GRACE:g} seconds later")  # fmt: skip
        else:
            why = describe_exit(status)
        return task.failed(why)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [t for t in self._tasks.values() if t.deadline and t.deadline <= now]
        for task in late:
            task.deadline = None
            task.killed_for_timeout = True
            self._signal(task, signal.SIGKILL)


def _loads_result(task: _Task, frame: bytes) -> TaskResult:
    try:
        result = result_from_wire(frame)
    except Exception as e:  # noqa: BLE001 - a result that cannot be read fails its task
        return task.failed(f"the task's result cannot be read here ({type(e).__name__}: {e})")
    assert isinstance(result, TaskResult)
    return result


class SpawnExecutor(ProcessExecutor):
    """One fresh Python interpreter per task (what platforms without fork use)."""

    start_method = "spawn"


def describe_exit(status: int | None) -> str:
    """Why a task's process ended without a result, from its wait status."""
    if status is None:
        return "the task's process ended without a result"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        if signum == signal.SIGSEGV:
            return segfault_message(signum, name)  # Metaflow's words, then the signal
        return f"the task's process was killed by signal {signum} ({name})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return (f"the task's process exited with code {code} before the step finished "
            "(os._exit, or a crash in ledgerflow: its output is in the task's stderr)")  # fmt: skip


def _deadline(spec: TaskSpec) -> float | None:
    return time.monotonic() + spec.timeout + TIMEOUT_GRACE if spec.timeout else None


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
            return


def _wait_all(tasks: list[_Task], seconds: float) -> None:
    end = time.monotonic() + seconds
    for task in tasks:
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        try:
            task.future.exception(timeout=remaining)
        except Exception:  # noqa: BLE001 - only waiting here; the error is read elsewhere
            return


def _wait_pid(pid: int, seconds: float) -> None:
    """Reap the fork server; kill it if it has not ended in time."""
    end = time.monotonic() + seconds
    try:
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > end:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.002)
    except ChildProcessError:
        pass
