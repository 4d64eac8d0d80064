"""The default executor: every task in a fresh process of its own, as Metaflow's are.

Where `os.fork` exists, a fork server (forkserver.py) forks each task, so a task pays a
fork, not an interpreter start. From a flow's command line on Linux it is forked early, as
the flow's module finishes loading (early.py: less memory, so cheaper forks); otherwise,
and when that one does not fit the run, from the run's process as the run starts.
Elsewhere, and with `--executor spawn`, each task is a fresh interpreter (`python -m
...forkserver`): slower, just as isolated.

Per task the runtime holds the read ends of three channels: the task's stdout pipe, its
stderr pipe (file descriptors 1 and 2 in the task: prints from any thread, subprocesses and C
code all arrive), and a socket that carries the spec in and the result out. There is no
thread here: the runtime's own loop calls `wait`, which runs the selector over every task's
channels in the runtime's thread, hands output to the task's sink as it comes, and completes
the task's future when its result arrives, or when its process ends without one (a crash, a
signal, os._exit), with the reason. Tasks whose @timeout did not stop them are killed there
too. While the runtime commits, tasks' output waits in their pipes (a task printing more than
a pipe holds pauses until the runtime reads again: its output is never lost, and the task
never holds anything the runtime waits for while it prints).
"""

from __future__ import annotations

import _socket
import codecs
import fcntl
import math
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
from typing import Any

from ..attempts import segfault_message
from ..exceptions import ExecutorError
from ..flowclasses import flow_class, register_flow_class
from ..taskoutput import expand_result
from ..taskspec import TaskResult, TaskSpec, result_from_wire, spec_to_wire
from . import DEFAULT_MAX_WORKERS, Executor, OutputSink, ResultFuture, RunningTask, TaskFuture
from .forkserver import STOP_GRACE, UNCAUGHT_EXIT
from .wire import CONTROL, FrameReader, framed

# How long a task may outlive its @timeout (its own SIGALRM should have stopped it) before
# the runtime kills its process, and how long Ctrl-C/SIGTERM waits before SIGKILL.
TIMEOUT_GRACE = 5.0
INTERRUPT_GRACE = 3.0


_UTF8 = codecs.getincrementaldecoder("utf-8")


class _Poller:
    """The channels `wait` serves, each an fd and what it is: epoll where there is one (a
    task costs two system calls less per channel than through `selectors`, and none of its
    per-key objects), else the platform's best selector."""

    def __init__(self) -> None:
        self.what: dict[int, Any] = {}
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._selector = None if self._epoll else selectors.DefaultSelector()

    def register(self, fd: int, what: Any, write: bool = False) -> None:
        self.what[fd] = what
        if self._epoll is not None:
            self._epoll.register(fd, _IN | _OUT if write else _IN)
        else:
            assert self._selector is not None
            self._selector.register(fd, selectors.EVENT_READ | selectors.EVENT_WRITE if write
                                    else selectors.EVENT_READ)  # fmt: skip

    def read_only(self, fd: int) -> None:
        if self._epoll is not None:
            self._epoll.modify(fd, _IN)
        else:
            assert self._selector is not None
            self._selector.modify(fd, selectors.EVENT_READ)

    def unregister(self, fd: int, closing: bool = False) -> None:
        """Stop serving `fd`; `closing`: it is closed next and no other process holds it,
        so epoll forgets it by itself (one system call less)."""
        if self.what.pop(fd, None) is None or (closing and self._epoll is not None):
            return
        if self._epoll is not None:
            self._epoll.unregister(fd)
        else:
            assert self._selector is not None
            self._selector.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, bool, bool]]:
        """(fd, readable, writable) of the channels ready within `timeout` seconds."""
        if self._epoll is not None:
            return [(fd, bool(mask & _READABLE), bool(mask & _WRITABLE))
                    for fd, mask in self._epoll.poll(-1 if timeout is None else timeout)]  # fmt: skip
        assert self._selector is not None
        return [(key.fd, bool(mask & selectors.EVENT_READ), bool(mask & selectors.EVENT_WRITE))
                for key, mask in self._selector.select(timeout)]  # fmt: skip

    def close(self) -> None:
        self.what.clear()
        if self._epoll is not None:
            self._epoll.close()
        else:
            assert self._selector is not None
            self._selector.close()


if hasattr(select, "epoll"):
    _IN, _OUT = select.EPOLLIN, select.EPOLLOUT
    _READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR  # as selectors maps them
    _WRITABLE = select.EPOLLOUT | select.EPOLLERR


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
    interpreter. Its futures complete inside `wait` (and `interrupt`, `shutdown`), in the
    thread that calls them: the runtime's."""

    start_method = "fork" if hasattr(os, "fork") else "spawn"

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS):
        super().__init__(max_workers)
        self._tasks: dict[int, _Task] = {}
        self._next_key = 0
        self._poller: _Poller | None = None
        self._wake_r = self._wake_w = -1
        self._server_pid: int | None = None
        self._control: socket.socket | None = None
        self._completed: list[ResultFuture] = []  # since the last wait()
        self._woken = False
        self._deadlines = 0  # running tasks with a deadline (@timeout)
        # Exits of spawned interpreters, posted by their waiting threads (the only threads)
        self._lock = threading.Lock()
        self._posted: list[tuple[int, int]] = []
        self._server_lost: str | None = None  # why the fork server is gone, if it is
        self._ready: set[int] | None = None  # the fds the poll round being handled reported
        self._flow_cls: type | None = None  # the run's (prepare): an early server is for it

    # -- the contract -----------------------------------------------------------------------

    def submit(self, spec: TaskSpec, output: OutputSink) -> TaskFuture:
        self._start()
        if self._server_lost:
            raise ExecutorError(self._server_lost)
        self._next_key += 1
        key = self._next_key
        task = _Task(key, spec, output, _deadline(spec))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        mine, theirs = _socketpair()
        try:
            self._launch(task, [out_w, err_w, theirs.fileno()])
        except OSError as e:  # the fork server is gone (it was killed, or a bug killed it)
            for fd in (out_r, err_r):
                os.close(fd)
            mine.close()
            raise ExecutorError(self._server_lost or self._lost_server(e)) from None
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
            theirs.close()
        # (a fresh pipe's read end has no other status flag: one call each, not two)
        fcntl.fcntl(out_r, fcntl.F_SETFL, os.O_NONBLOCK)
        fcntl.fcntl(err_r, fcntl.F_SETFL, os.O_NONBLOCK)
        mine.setblocking(False)
        task.fds = {"stdout": out_r, "stderr": err_r, "result": mine}
        self._tasks[key] = task
        if task.deadline is not None:
            self._deadlines += 1
        frame = memoryview(framed(spec_to_wire(spec)))  # plain values: taskspec.py says why
        try:
            sent = mine.send(frame)  # all of it, unless it is large (a join's)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = len(frame)  # the process is gone: its exit completes the future
        task.outbox = frame[sent:]  # the rest is sent by wait() as the task reads
        assert self._poller is not None
        register = self._poller.register
        register(out_r, (task, "stdout"))
        register(err_r, (task, "stderr"))
        register(mine.fileno(), (task, "result"), write=bool(task.outbox))
        return task.future

    def start(self, spec: TaskSpec, output: OutputSink) -> TaskFuture:
        return self.submit(spec, output)  # wait() knows what completed: no callback needed

    def wait(self, timeout: float | None) -> list[ResultFuture]:
        """Serve the running tasks in this thread until one of them completes, `wake` is
        called, or `timeout` seconds pass: their output goes to their sinks as it comes, the
        rest of a large spec is sent as the task reads it, results are read, exits and the
        fork server's end are noticed, and tasks past their deadline killed."""
        if self._poller is None:
            return []
        end = None if timeout is None else time.monotonic() + timeout
        while not (self._completed or self._woken):
            wait = None if end is None else end - time.monotonic()
            if wait is not None and wait <= 0:
                break
            self._poll(wait)
        done, self._completed, self._woken = self._completed, [], False
        return done

    def wake(self) -> None:
        self._woken = True  # (called from inside wait(), by a sink that is full)
        self._wake()  # (from another thread: the select returns at once)

    def prepare(self, flow_cls: type) -> None:
        """Start the fork server now, before the run's process opens the ledger: the server
        then holds none of SQLite's per-process state for the file, so nothing has to be
        closed and reopened (a reopen by the only process with the file open makes it the
        first opener again, whose brief exclusive lock a reader with no busy timeout meets).
        Optional: the first submit starts it otherwise."""
        register_flow_class(flow_cls)
        self._flow_cls = flow_cls
        self._start()

    def interrupt(self) -> None:
        """SIGTERM every running task, SIGKILL what is left after INTERRUPT_GRACE, and
        serve them (briefly) until each one's output is in and its future complete."""
        tasks = list(self._tasks.values())
        for task in tasks:
            self._signal(task, signal.SIGTERM)
        self._serve_until_done(INTERRUPT_GRACE)
        for task in list(self._tasks.values()):
            self._signal(task, signal.SIGKILL)
        self._serve_until_done(INTERRUPT_GRACE)

    def shutdown(self, wait: bool = True) -> None:
        if self._poller is None:
            return
        if wait:
            self._serve_until_done(None)
        else:
            self.interrupt()
        for task in list(self._tasks.values()):  # (not waited for: they are killed)
            for stream in list(task.fds):
                self._close(task, stream)
        self._tasks.clear()
        if self._control is not None:
            try:
                self._control.send(CONTROL.pack(b"q", 0, 0))
            except OSError:
                self._control.close()  # it sees the socket close instead, and exits
                self._control = None
        if self._server_pid is not None:
            # It reaps every task before it exits (waiting up to its STOP_GRACE for those
            # still exiting), so their CPU time counts in this process's rusage. Its end of
            # the socket stays open until then: an exit it reports meanwhile (the last
            # task's) must not meet a closed socket, which ends the server on the spot.
            _wait_pid(self._server_pid, STOP_GRACE + 4.0)
            self._server_pid = None
        if self._control is not None:
            self._control.close()
            self._control = None
        self._poller.close()
        self._poller = None
        os.close(self._wake_r)
        # (a spawned task's waiting thread may still post its exit: to nothing, not to
        # whatever file reuses the number)
        wake_w, self._wake_w = self._wake_w, -1
        os.close(wake_w)
        self._completed = []

    # -- starting tasks -------------------------------------------------------------------

    def _start(self) -> None:
        if self._poller is not None:
            return
        self._poller = _Poller()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller.register(self._wake_r, "wake")
        if self.start_method == "fork":
            self._start_fork_server()

    def _start_fork_server(self) -> None:
        from .early import take

        # The one forked before the command line loaded (early.py), else one forked here.
        early = take(self._flow_cls) if self._flow_cls is not None else None
        self._server_pid, mine = early or _fork_server()
        self._control = mine
        mine.setblocking(False)
        assert self._poller is not None
        self._poller.register(mine.fileno(), "control")

    def _launch(self, task: _Task, fds: list[int]) -> None:
        if self._control is not None:
            socket.send_fds(self._control, [CONTROL.pack(b"r", task.key, 0)], fds)
            return
        import subprocess  # here only: a run that forks never needs it (~3.5 ms to import)

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

        def wait() -> None:  # a thread per spawned task: it posts the exit to wait()
            code = proc.wait()
            status = (-code) if code < 0 else (code << 8)  # as os.waitpid reports it
            with self._lock:
                self._posted.append((task.key, status))
            self._wake()

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

    # -- serving running tasks (in the thread that waits) ----------------------------------

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # full (a wake-up is pending anyway), or closed (the run is over)

    def _serve_until_done(self, seconds: float | None) -> None:
        """Serve tasks until none is running, or `seconds` pass."""
        end = None if seconds is None else time.monotonic() + seconds
        while self._tasks and self._poller is not None:
            wait = None if end is None else end - time.monotonic()
            if wait is not None and wait <= 0:
                return
            self._poll(wait)

    def _poll(self, timeout: float | None) -> None:
        """One round: wait for the channels (at most `timeout` seconds, or until the nearest
        deadline), and handle what is ready."""
        assert self._poller is not None
        what = self._poller.what
        if self._deadlines:
            nearest = min(t.deadline or math.inf for t in self._tasks.values()) - time.monotonic()
            timeout = max(0.0, nearest if timeout is None else min(timeout, nearest))
        events = self._poller.poll(timeout)
        self._ready = {fd for fd, readable, _ in events if readable}
        for fd, readable, writable in events:
            data = what.get(fd)  # (None: closed by what came before it in this round)
            if type(data) is tuple:
                task, stream = data
                if writable:
                    self._send_spec(task)
                if readable and self._read(task, stream) and task.result is not None:
                    self._finish(task)
            elif data == "control":
                self._read_control()
            elif data == "wake":  # spawned tasks' exits, or wake()
                _drain(self._wake_r)
                with self._lock:
                    posted, self._posted = self._posted, []
                for key_, status in posted:
                    task = self._tasks.get(key_)
                    if task is not None:
                        self._finish(task, exit_status=status)
        self._ready = None
        if self._deadlines:
            self._enforce_deadlines()

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
            task = self._tasks.get(key)
            if task is not None:
                self._finish(task, exit_status=value)

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
        assert self._control is not None and self._poller is not None
        self._poller.unregister(self._control.fileno())
        self._server_lost = self._lost_server()
        for task in list(self._tasks.values()):
            self._finish(task, lost=self._server_lost)

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
            assert self._poller is not None
            self._poller.read_only(sock.fileno())

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
        assert self._poller is not None
        # Read ends made here are held by no other process where tasks are forked by the
        # server (a spawned task's Popen may hold them a moment, between fork and exec).
        alone = self._control is not None
        if isinstance(fd, int):
            self._poller.unregister(fd, closing=alone)
            os.close(fd)
        else:
            self._poller.unregister(fd.fileno(), closing=alone)
            fd.close()

    def _finish(self, task: _Task, exit_status: int | None = None,
                lost: str | None = None) -> None:  # fmt: skip
        """The task is over: take the rest of its output and complete its future."""
        if task.future.done():
            return
        # Whatever the process wrote before its result or its end is in the pipes by now
        # (anything a leftover subprocess writes later is not the task's).
        for stream in self._unread(task, by_result=exit_status is None and lost is None):
            while task.fds.get(stream) is not None and self._read(task, stream):
                pass
        for stream in list(task.fds):
            self._close(task, stream)
        for stream, decoder in task.decoders.items():
            task.output.write(stream, decoder.decode(b"", final=True))
        if self._tasks.pop(task.key, None) is not None and task.deadline is not None:
            self._deadlines -= 1
        result = task.result
        if result is None:
            result = task.failed(lost) if lost else self._crashed(task, exit_status)
        result.spec = task.spec
        expand_result(result, task.spec)
        task.future.set_result(result)
        self._completed.append(task.future)

    def _unread(self, task: _Task, by_result: bool) -> list[str]:
        """The channels of an ending task that may still hold something of it. When a poll
        round read its result: those the round found readable (most tasks print nothing,
        and reading their empty pipes would cost a system call and an exception each). The
        task wrote its output before it began sending its result, so any output not read
        yet was in its pipes when a round first found the socket readable, and is still
        reported readable now. Not so for an end the fork server reports (`x` messages
        read in the same round may be newer than the round's poll): every channel, as
        for anything else. Once its result is in, nothing more on its socket is the task's."""
        ready = self._ready if by_result else None
        found = []
        for stream in ("stdout", "stderr", "result"):
            channel = task.fds.get(stream)
            if channel is None or (stream == "result" and task.result is not None):
                continue
            if ready is None or (channel if type(channel) is int else channel.fileno()) in ready:
                found.append(stream)
        return found

    def _crashed(self, task: _Task, status: int | None) -> TaskResult:
        if task.killed_for_timeout:
            why = (f"the task did not stop at its @timeout; its process was killed "
                   f"{TIMEOUT_GRACE:g} seconds later")  # fmt: skip
        else:
            why = describe_exit(status)
        return task.failed(why)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for task in [t for t in self._tasks.values() if t.deadline and t.deadline <= now]:
            task.deadline = None
            self._deadlines -= 1
            task.killed_for_timeout = True
            self._signal(task, signal.SIGKILL)


def _fork_server() -> tuple[int, socket.socket]:
    """Fork the fork server from this process: its pid, and this end of its socket."""
    import ctypes  # noqa: F401  (once for both: the server forks through it, the run's connections use it)

    from ..ledger import Ledger
    from .forkserver import serve

    # SEQPACKET keeps messages whole and, unlike DGRAM, tells the server when the run's
    # end closes (macOS has no SEQPACKET: there the "stop" message and the server's own
    # check of its parent serve).
    kind = getattr(socket, "SOCK_SEQPACKET", None) if sys.platform.startswith("linux") \
        else None  # fmt: skip
    mine, theirs = socket.socketpair(socket.AF_UNIX, kind or socket.SOCK_DGRAM)
    sys.stdout.flush()  # else the server, and every task, would inherit unflushed text
    sys.stderr.flush()
    # Tasks then open the ledger with SQLite's state clean (nothing to do when the server
    # is started before the ledger is opened: see prepare()).
    Ledger.release_connections()
    pid = os.fork()
    if pid == 0:
        mine.close()
        serve(theirs)
    theirs.close()
    return pid, mine


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
    if code == UNCAUGHT_EXIT:
        return ("the task's process stopped on an uncaught KeyboardInterrupt or other "
                "BaseException (or a bug in ledgerflow): its traceback is in the task's "
                "stderr")  # fmt: skip
    return (f"the task's process exited with code {code} before the step finished "
            "(os._exit, or exit() from a C library): its output is in the task's stderr")  # fmt: skip


def _socketpair() -> tuple[Any, Any]:
    """A connected pair of sockets as `_socket` makes them: `socket.socketpair` wraps each in
    a `socket.socket`, whose constructor asks the kernel what the descriptor is (a system
    call each, a task). What is used of them (send, recv, setblocking, fileno, close) is the
    same."""
    return _socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)  # type: ignore[no-any-return]


def _deadline(spec: TaskSpec) -> float | None:
    return time.monotonic() + spec.timeout + TIMEOUT_GRACE if spec.timeout else None


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
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
