"""The task's side of the process executor: the fork server, and a task's own process.

The fork server is forked once per run: early, as the flow's module finishes loading and
before the command line loads (early.py), or from the run's process as the run starts. The
flow's module, ledgerflow's task path and whatever the flow imports are loaded, and it has
one thread. For each task it forks a child, so a task costs a fork, not an interpreter start,
and starts from the same clean state as every other task (module globals, os.environ, the
working directory, random state, signal handlers: nothing one task changes reaches another).

Messages on the control socket (datagrams of wire.CONTROL: kind, key, value):
  runtime -> server  b"r" key: run a task, its three file descriptors attached (its stdout
                     pipe, its stderr pipe, its socket to the runtime); b"k" key signum;
                     b"q": the run is over
  server -> runtime  b"x" key status: exited (its wait status; the runtime never needs a
                     task's pid: it signals a task by key)
At b"q" the server gives tasks still exiting STOP_GRACE to end, kills the rest, reaps every
one and exits; when the control socket closes (the run's process died) it kills and reaps at
once. On Linux the server and every task also die with their parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.py's C core (no stubs)
import _thread
import array
import atexit
import gc
import os
import select
import signal
import socket
import sys
from typing import Any, NoReturn

from .. import forkhooks, rng
from ..taskspec import TaskResult, result_to_wire, spec_from_wire, spec_to_wire
from .wire import (
    CONTROL,
    die_with_parent,
    flush_stdio,
    own_stdio,
    prctl,
    prebuild_stdio,
    recv_frame,
    recv_frame_into,
    send_frame,
)

# A task's exit code when something escaped the step's own error handling (task.py records
# the step's Exceptions and SystemExit as its failure): a KeyboardInterrupt or another
# BaseException the step raised, or a bug in ledgerflow. Its traceback is in the task's stderr.
UNCAUGHT_EXIT = 70  # (EX_SOFTWARE)

# At its end the server waits this long for tasks still exiting (they sent their result and
# are flushing their output) before it kills them; either way it reaps every one, so their
# CPU time counts in the run's rusage.
STOP_GRACE = 1.0


def serve(control: socket.socket) -> NoReturn:
    """The fork server's loop (in the freshly forked server process)."""
    server: _Server | None = None
    try:
        die_with_parent()
        # Ctrl-C at the terminal goes to the run's process group; the runtime then stops
        # tasks itself and records them, so tasks live in a group of their own.
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server = _Server(control)
        _prepare_tasks()
        # Every object alive now moves out of the collector's sight: a task's collections
        # then never write to them, so their pages stay shared with the server instead of
        # being copied into each task (Python's advice for forking servers).
        server.states = rng.snapshot()
        server.rng_needed = rng.task_state_needed(server.states)
        gc.freeze()
        server.loop()
    except OSError:
        # The runtime closed the control socket: the run is over. Its b"q" may go unread
        # (a read meets ECONNRESET when the runtime left our last exit reports unread) or a
        # report unsent (EPIPE): stop as b"q" stops, so every task is reaped and counted.
        if server is not None:
            server.stop(grace=STOP_GRACE)
    except BaseException:  # pragma: no cover  # noqa: BLE001 - a bug here: say so, and end
        import traceback

        traceback.print_exc()
    os._exit(0)


def _prepare_tasks() -> None:
    """What every task needs, made once here instead of in each task's process: the hashers
    and zstd context of small values, the stdout/stderr writers, prctl's argument types,
    the modules a task imports on its way, and libc's fork when it is safe (forkhooks.py)."""
    from .. import codec, joins, task, taskblobs, taskcards, taskoutput  # noqa: F401  (a task's modules)

    codec.prepare()
    taskblobs.prepare_in_server()
    _load_task_path()
    prebuild_stdio()
    # The streams every task takes, taken once here, where they are the run's own: the
    # prebuilt writers on 1 and 2 (this process writes nothing but a bug's traceback) and
    # /dev/null on 0. Each task then only puts its pipes on 1 and 2.
    own_stdio()
    global _STDIO_TAKEN
    _STDIO_TAKEN = True
    prctl()
    raw_fork = sys.platform.startswith("linux") and forkhooks.raw_fork_is_safe()
    if raw_fork:
        import ctypes

        # (PyDLL: called holding the GIL, as os.fork forks, and as _exit may; a call that
        # released and took it back would write the interpreter's GIL state in each task)
        libc = ctypes.PyDLL(None, use_errno=True)
        fork = libc.fork
        fork.argtypes = ()
        fork.restype = ctypes.c_int
        _LIBC_FORK.append(fork)
        libc_exit = libc._exit
        libc_exit.restype = None
        _LIBC_EXIT.append(libc_exit)
    # (before the warm-ups, which run _run_one's test of what a task left for its exit)
    _leave_exit_handlers_to_the_run()
    # The warm-ups last, so that what they leave in the interpreter's type attribute cache
    # is what each task finds there (a look-up made after them can evict a task's entry, and
    # each task would write it back: a page copied).
    _warm()
    _warm_task_path()
    if raw_fork:
        _declare_idle_hooks()
        # The server never starts a thread after this: checked once, true for every fork.
        _ONE_THREAD.append(forkhooks.one_thread())
        forkhooks.plan_after_in_child(_ONE_THREAD[0])


def _declare_idle_hooks() -> None:
    """The ledger's after-fork hook has nothing to do while no ledger is open here and its
    lock is free (its own first test, ledger.py): so in a fork server, which opens none,
    its tasks leave it out (forkhooks.idle_when; codec declares its own). Declared here,
    by the hook's one user that forks from a process without ledgers, not in the storage
    layer, which stays below the fork machinery."""
    from ..ledger import Ledger, _writers

    forkhooks.idle_when(Ledger._after_fork_in_child,
                        lambda: not (Ledger._open or _writers.data or Ledger._open_lock.locked()))  # type: ignore[attr-defined]  # fmt: skip


_LIBC_FORK: list[Any] = []
_ONE_THREAD: list[bool] = []
# How many after-fork hooks a task runs by hand ([0] unless libc's fork is used: os.fork runs
# them itself): often none, and then the task makes no call for them at all.
_CHILD_HOOKS = forkhooks.planned_child_hooks


def _warm() -> None:
    """Run once here what every task runs on its way and sets up on first use (datetime's
    time zone, the regular expressions of the secrets check, JSON's encoder, a value's
    encoding and preview): measured, a task's first call of each cost it 0.1-0.2 ms and
    30-50 page faults."""
    import json

    from ..clock import now_iso
    from ..flowspec import Transition
    from ..secrets_check import credential_warning
    from ..taskblobs import encode_artifact

    now_iso()
    result = TaskResult(None, "succeeded", now_iso(), now_iso(),  # type: ignore[arg-type]
                        transition=Transition(["end"]))  # fmt: skip
    for value in (1, 1.5, "text", [1, "a"], {"k": None}):
        record, blob = encode_artifact("warm_value", value, codec_chunk())
        credential_warning("start", "warm_value", value, record.preview)
        json.loads(json.dumps(value))
        result.artifacts[f"v{len(result.artifacts)}"] = record
        result.blobs.append(blob)
    _result_to_wire(result)
    # A task's frames in and out, over a pipe: their functions specialised, and os.writev
    # bound (the dynamic linker binds a C function on its first call, writing its table's
    # page: measured, ~10 page faults in each task that made the first call).
    _RECV_BUFFER.append(bytearray(65536))
    r, w = os.pipe()
    try:
        for _ in range(WARM_ROUNDS):
            send_frame(w, b"warm")
            recv_frame(r)
            send_frame(w, b"warm")
            recv_frame_into(r, _RECV_BUFFER[0])
    finally:
        os.close(r)
        os.close(w)


# Rounds of the warm-up: CPython 3.11 specialises a function's code after 8 calls.
WARM_ROUNDS = 10


def _warm_task_path() -> None:
    """Run the task path here, WARM_ROUNDS times over the steps of each registered flow
    class, with a stand-in for each step (it reads `self.input` and a parent's artifact,
    sets one, and calls `self.next()` to the step's successors): no user code runs, nor
    cards, and the ledger is never opened (inputs come with the spec, values stay small).

    Each task then starts from the state this leaves: every function on its path
    specialised already (CPython 3.11 rewrites a function's code, in place, on its 8th
    call: a write, so a page copied, in each task that makes it), and the interpreter's
    type attribute cache holding the look-ups a task makes (a miss writes its entry, and
    the names' reference counts: more pages). Measured on foreach 1,000: 530 -> 500 page
    faults a task, for ~3 ms once here."""
    from ..flowclasses import registered_flow_classes
    from ..flowspec import FlowSpec
    from ..graph import flow_graph

    for cls in registered_flow_classes():
        # Only FlowSpec's own attribute machinery: a class that overrides it would run
        # user code on a flow object here.
        if type(cls) is not type or any(getattr(cls, name) is not getattr(FlowSpec, name)
                                        for name in _WARMED_ATTRIBUTES):  # fmt: skip
            continue
        try:
            graph = flow_graph(cls)
            steps = [name for name in graph.sorted_nodes if hasattr(cls, name)]
            for i in range(max(WARM_ROUNDS, len(steps))):
                step = steps[i % len(steps)]
                # (through the spec's wire form, as a task reads it: objects of the same
                # make, so the attribute look-ups specialised here are those a task makes)
                frame = spec_to_wire(_warm_spec(cls, step))
                _run_one(frame, _Quiet(), _stand_in(graph[step].out_funcs))
        except Exception:  # noqa: BLE001 - a warm-up only: tasks work the same without it
            continue


_WARMED_ATTRIBUTES = ("__setattr__", "__getattr__", "__getattribute__", "input", "next")


class _Quiet:
    def write(self, stream: str, text: str) -> None:
        pass


def _warm_spec(cls: type, step: str) -> Any:
    from ..codec import encode
    from ..flowspec import ForeachFrame
    from ..taskblobs import encode_artifact
    from ..taskspec import TaskSpec

    record, blob = encode_artifact("warm_parent", 1, codec_chunk())
    assert blob.raw is not None
    preloaded = {record.sha: (record.encoding, blob.raw)}
    return TaskSpec("", cls.__module__, cls.__name__, os.devnull, cls.__name__, "1", 0, step,
                    "1", inputs=[{"warm_parent": record}], preloaded=preloaded,
                    foreach_stack=[ForeachFrame(step, "warm_parent", 1, 0, "1")],
                    foreach_item=encode(1), constants={"warm_constant": record},
                    username="")  # fmt: skip


def _stand_in(successors: list[str]) -> Any:
    def make(flow: Any) -> Any:
        def step(*inputs: Any) -> None:
            flow.warm_value = flow.input + flow.warm_parent
            if successors:
                flow.next(*(getattr(flow, name) for name in successors))

        return step

    return make


def codec_chunk() -> int:
    from ..ledger import chunk_size_setting

    try:
        return chunk_size_setting()
    except Exception:  # noqa: BLE001 - a bad setting is reported by the run, not here
        from ..codec import DEFAULT_CHUNK_SIZE

        return DEFAULT_CHUNK_SIZE


def _fork() -> int:
    """fork(2) from libc, without CPython's after-fork work, when that is safe (one thread
    here; every Python fork hook known, and run by hand: forkhooks.py); else os.fork.

    In the child it returns before the after-fork hooks ran: the child runs them first
    thing (_task_child). (Code only children run is code this process never specialises,
    so each child would rewrite it, a page copied: the child's part is kept to the one
    function that runs only there.)"""
    if not _LIBC_FORK:
        return os.fork()
    one_thread = _ONE_THREAD[0]
    forkhooks.run_before(one_thread)
    pid = _LIBC_FORK[0]()
    if pid < 0:
        import ctypes

        errno = ctypes.get_errno()
        forkhooks.run_after_in_parent(one_thread)
        raise OSError(errno, os.strerror(errno))
    if pid:
        forkhooks.run_after_in_parent(one_thread)
    return pid


class _Server:
    """The server's state: its tasks by pid and key, and how it learns that one ended (a
    pidfd per task where Linux has them, so no SIGCHLD handler has to be undone in every
    task; else SIGCHLD through a wake-up pipe)."""

    def __init__(self, control: socket.socket):
        self.control = control
        self.control_fd = control.fileno()
        self.states: dict[str, Any] = {}
        self.rng_needed = True
        self.pids: dict[int, int] = {}  # pid -> task key
        self.keys: dict[int, int] = {}  # task key -> pid
        self.pidfds: dict[int, int] = {}  # pidfd -> pid
        self.parent = os.getppid()
        # poll, not select: the run's process may hold over 1,024 descriptors (a notebook, a
        # test session), and select() cannot watch a descriptor numbered past that.
        self.poller = select.poll()
        self.poller.register(control.fileno(), select.POLLIN)
        self.wake_r = -1
        self.use_pidfd = _pidfd_works()
        if not self.use_pidfd:
            self.wake_r, wake_w = os.pipe()
            os.set_blocking(self.wake_r, False)
            os.set_blocking(wake_w, False)
            signal.set_wakeup_fd(wake_w)
            signal.signal(signal.SIGCHLD, lambda signum, frame: None)
            self.poller.register(self.wake_r, select.POLLIN)

    def loop(self) -> None:
        # Each write the server makes to a page after a fork copies that page (its task
        # shares it until it exits): the loop does little, in plain statements.
        control = self.control.fileno()
        recvmsg = self.control.recvmsg
        fds_space = socket.CMSG_LEN(3 * _FD_SIZE)
        while True:
            got_control = False
            for fd, _ in self.poller.poll(1000):
                if fd == control:
                    got_control = True
                elif fd in self.pidfds:
                    self.reaped(self.pidfds.pop(fd), fd)
                elif fd == self.wake_r:
                    _drain(fd)
                    self.reap_any()
            if os.getppid() != self.parent:  # the run's process died (no PDEATHSIG here)
                self.stop(grace=0)
                return
            if not got_control:
                continue
            # socket.recv_fds, without its Python wrapper
            msg, ancdata, _flags, _addr = recvmsg(64, fds_space)
            fds = _received_fds(ancdata)
            if not msg:
                self.stop(grace=0)  # the run's end of the socket closed
                return
            kind, key, value = CONTROL.unpack(msg)
            if kind == b"q":
                self.stop(grace=STOP_GRACE)
                return
            if kind == b"r":
                self.fork_task(key, fds)
            elif kind == b"k" and key in self.keys:
                _kill(self.keys[key], value)

    def fork_task(self, key: int, fds: list[int]) -> None:
        child = _task_child  # (looked up here, where it is specialised, not in the child)
        pid = _fork()
        if pid == 0:
            child(self, fds)
        for fd in fds:
            _close(fd)
        self.pids[pid], self.keys[key] = key, pid
        if self.use_pidfd:
            pidfd = _pidfd_open(pid)
            self.pidfds[pidfd] = pid
            self.poller.register(pidfd, _POLLIN)

    def reaped(self, pid: int, pidfd: int) -> None:
        self.poller.unregister(pidfd)
        os.close(pidfd)
        try:
            _pid, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return
        self.exited(pid, status)

    def reap_any(self) -> None:
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.exited(pid, status)

    def exited(self, pid: int, status: int) -> None:
        key = self.pids.pop(pid, None)
        if key is not None:
            self.keys.pop(key, None)
            self.control.send(CONTROL.pack(b"x", key, status))

    def stop(self, grace: float) -> None:
        """The run is over, or its process is gone: nothing may outlive it. Tasks still
        exiting get `grace` seconds; then the rest are killed, and every one is reaped."""
        import time

        end = time.monotonic() + grace
        while self.pids and time.monotonic() < end:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break  # none left (a task reaped already, its report unsent)
            if pid:
                self.pids.pop(pid, None)
            else:
                time.sleep(0.002)
        for pid in self.pids:
            _kill(pid, signal.SIGKILL)
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.pids.clear()
        _report_rusage()


# scripts/bench.py sets this to a file path: the server then writes its own CPU time and page
# faults, and its tasks', there as it stops (the run's rusage holds only their sum).
RUSAGE_ENV = "LEDGERFLOW_FORKSERVER_RUSAGE"


def _report_rusage() -> None:
    path = os.environ.get(RUSAGE_ENV)
    if not path:
        return
    import json
    import resource

    mine, tasks = (resource.getrusage(who)
                   for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))  # fmt: skip
    with open(path, "w") as f:
        json.dump(
            {
                "server_cpu": mine.ru_utime + mine.ru_stime,
                "server_faults": mine.ru_minflt,
                "tasks_cpu": tasks.ru_utime + tasks.ru_stime,
                "tasks_user": tasks.ru_utime,
                "tasks_faults": tasks.ru_minflt,
                "server_maxrss_kb": mine.ru_maxrss,
                "tasks_maxrss_kb": tasks.ru_maxrss,
            },
            f,
        )


_FD_SIZE = array.array("i").itemsize  # bytes of a descriptor in SCM_RIGHTS (a C int)


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors of a message's SCM_RIGHTS, read as socket.recv_fds reads them."""
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % _FD_SIZE])
    return list(fds)


def _pidfd_works() -> bool:
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
        return True
    except OSError:  # an old kernel, or a sandbox without the system call
        return False


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 512):
                return
        except BlockingIOError:
            return


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _task_child(server: _Server, fds: list[int]) -> NoReturn:
    """In the task's freshly forked process: the fork hooks (when forked by libc's fork:
    _fork), the server's descriptors closed, the pipes taken as stdout/stderr, the random
    state a fresh process would have (rng.py), then the task."""
    if _CHILD_HOOKS[0]:
        forkhooks.run_after_in_child(_ONE_THREAD[0])
    # The bare descriptors: the socket object's close() is Python code each task would run
    # for nothing (the object is never used again here).
    _close(server.control_fd)
    for fd in server.pidfds:
        _close(fd)
    if server.wake_r >= 0:
        _close(server.wake_r)
    if server.rng_needed:  # else nothing to restore (rng.task_state_needed)
        rng.fresh_task_state(server.states)
    if not server.use_pidfd:  # else the server has no SIGCHLD handler nor wake-up fd to undo
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # SIGTERM is SIG_DFL already. _signal's own function: signal.signal's enum conversions
    # are Python code each task would run (and write to) for nothing.
    _set_handler(_SIGINT, _INT_HANDLER)
    die_with_parent()
    out, err, sock = fds
    _dup2(out, 1)
    _dup2(err, 2)
    _close(out)
    _close(err)
    run_child(sock)


# (plain values: signal.SIGINT is an enum member, looked up through the module)
_SIGINT, _INT_HANDLER = int(signal.SIGINT), signal.default_int_handler
_set_handler = _signal.signal
# The functions the server's loop and a task's first steps call, as globals: a module's
# attribute goes through the interpreter's type attribute cache, whose entries the loop
# and its tasks would then evict from each other (a write, so a page copied, in each task).
_close, _dup2 = os.close, os.dup2
_pidfd_open: Any = getattr(os, "pidfd_open", None)  # (use_pidfd says whether there is one)
_POLLIN = select.POLLIN
# True in the fork server once it took its tasks' streams (serve): a forked task has them.
_STDIO_TAKEN = False


def run_child(sock_fd: int) -> NoReturn:
    """Receive the task's spec, run it, finish what the step left as a Python process's exit
    would (_end_as_an_interpreter_would), send the result back, and exit at once."""
    if not _TASK_PATH:  # a fresh interpreter (spawn_main); forked tasks have them
        _load_task_path()
        _unregister_the_ledgers_exit_handler()
    if not _STDIO_TAKEN:
        own_stdio()
    code = 0
    try:
        # The socket's bare descriptor (a socketpair's end: processes.py), read and written
        # with os.readv/os.writev: no socket object made (measured: ~10 page faults a task).
        frame = recv_frame_into(sock_fd, _RECV_BUFFER[0] if _RECV_BUFFER else bytearray(65536))
        if frame is None:
            _exit(0)  # the run stopped before this task could begin
        data = _run_one(frame, _TASK_PATH[0], None)
        flush_stdio()  # the task's output reaches its pipes before its result is read
        send_frame(sock_fd, data)
    except BaseException:  # noqa: BLE001 - the task's process reports anything and exits
        import traceback

        traceback.print_exc()
        code = UNCAUGHT_EXIT  # the runtime reports the task as failed with this output
    finally:
        flush_stdio()  # what the step's leftover threads printed meanwhile
        _exit(code)


def _run_one(frame: bytes | memoryview, output: Any, stand_in: Any) -> bytes:
    """A task's work from its spec's frame to its result's wire form: run by each task, and
    by the fork server's warm-up (with a stand-in for the step), so that what a task runs
    here is specialised before it forks (code a task alone ran would be rewritten, so
    copied, in each)."""
    _output, run_task, compact_result = _TASK_PATH
    spec = spec_from_wire(frame)
    result = run_task(spec, output, own_process=True, _stand_in=stand_in)
    result.spec = None  # type: ignore[assignment]  # the runtime has it: not sent back
    if spec.is_join or not result.carried:  # else compact already (collect_artifacts)
        compact_result(result, spec)
    data = _result_to_wire(result)
    # What the step left for its process's exit (the common case: nothing): the test runs
    # in the warm-up too, so that it is specialised, and nothing of it is run there.
    threads, before, handlers, logging_handlers = _AT_EXIT
    if (threads() > before or handlers() or len(logging_handlers) > 1) and stand_in is None:
        _end_as_an_interpreter_would()
    return data


def _end_as_an_interpreter_would() -> None:
    """What a Python process's normal exit does for what the step left, as a Metaflow task's
    process does it on its way out: the non-daemon threads still running are waited for (a
    `ThreadPoolExecutor`'s work included), the `logging` handlers are flushed and closed,
    and the `atexit` handlers registered in the task run (the step's own, `weakref.finalize`
    clean-ups of what it made). What they print is the task's output, and the task ends
    when they have. (The task then exits with `_exit`: tearing the interpreter down would
    cost every task milliseconds.)

    Exit handlers registered before the fork are not a task's: they clean up what the run's
    process made (a module-level temporary directory every task uses), and run there, once
    (_leave_exit_handlers_to_the_run). `logging`'s, imported before the fork, is the one
    run here: flushing the task's copies of the handlers loses nothing and closes nothing
    shared. Called when there is something to do (_run_one)."""
    threads, before, handlers, logging_handlers = _AT_EXIT
    if threads() > before:
        import threading

        threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize calls first
    if len(logging_handlers) > 1:  # (more than logging's last resort)
        sys.modules["logging"].shutdown()
    if handlers():
        atexit._run_exitfuncs()


def _leave_exit_handlers_to_the_run() -> None:
    """In the fork server: drop every `atexit` handler (the server never exits through them:
    os._exit). They were registered by the run's process or before it forked this one, for
    what that process made: ledgerflow's own (the ledger's checkpoint at exit; the command
    line's `gc.freeze`), the flow module's and its libraries'. A task's exit then runs
    exactly the handlers registered in the task, and `logging`'s."""
    atexit._clear()
    logging = sys.modules.get("logging")
    if logging is not None:
        _AT_EXIT[3] = logging._handlerList  # type: ignore[attr-defined]  # (appended to in place)
    # Threads the flow's module started before a fork stay counted in the forked copy,
    # though they do not run there: the count a task starts from.
    _AT_EXIT[1] = _thread._count()


def _unregister_the_ledgers_exit_handler() -> None:
    """In a task started as a fresh interpreter: its ledger's checkpoint at exit is the run's
    process's work (taskblobs.py); the other handlers are the task's, as in Metaflow."""
    ledger = sys.modules.get(f"{__package__.rpartition('.')[0]}.ledger")
    if ledger is not None:
        atexit.unregister(ledger.Ledger._checkpoint_at_exit)


# (the number of threads other than this one still running, and that number as a task
# starts; of exit handlers registered in this process, empty slots included; logging's
# handlers when it was loaded before the fork)
_AT_EXIT: list[Any] = [_thread._count, 0, atexit._ncallbacks, ()]


def _exit(code: int) -> NoReturn:
    """os._exit, through libc's _exit found once in the fork server where it can be
    (os._exit's first call binds the C function through the dynamic linker, writing to
    its table: measured, ~8 page faults in each task, where it is always the first)."""
    if _LIBC_EXIT:
        _LIBC_EXIT[0](code)
    os._exit(code)


_LIBC_EXIT: list[Any] = []


# What a task reads its spec into: made once, in the fork server (_warm), so its pages are
# there and a task copies only the one or two its spec fills.
_RECV_BUFFER: list[bytearray] = []

# (a StdStreams, run_task, compact_result), looked up and made once: a relative import
# statement in each task would run importlib's Python code to check the package's name.
_TASK_PATH: list[Any] = []


def _load_task_path() -> None:
    from ..task import StdStreams, run_task
    from ..taskoutput import compact_result

    _TASK_PATH[:] = [StdStreams(), run_task, compact_result]


def _result_to_wire(result: TaskResult) -> bytes:
    try:
        return result_to_wire(result)
    except Exception as e:  # noqa: BLE001 - an unsendable result is reported as the task's failure
        # e.g. foreach values that pickle cannot send back by reference (a lambda): the task
        # fails with the reason rather than the run.
        failed = TaskResult(None, "failed", result.started_at, result.finished_at,  # type: ignore[arg-type]
                            exception_type=type(e).__name__,
                            exception=f"cannot send the task's result to the run: {e}")  # fmt: skip
        return result_to_wire(failed)


def spawn_main() -> NoReturn:
    """Entry point of a task started as a fresh interpreter (`python -m
    ledgerflow.executors.forkserver SOCK_FD FLOW_FILE FLOW_MODULE CLASS`): stdout/stderr are
    the pipes already. The flow's module is loaded first and stands in for the run's
    `__main__`, so values of classes the flow defines unpickle here as they were sent."""
    die_with_parent()
    sock_fd, flow_file, flow_module, class_name = sys.argv[1:5]
    from ..flowclasses import load_flow_class

    cls = load_flow_class(flow_file, flow_module, class_name)
    sys.modules[flow_module] = sys.modules[cls.__module__]
    run_child(int(sock_fd))


if __name__ == "__main__":
    spawn_main()
