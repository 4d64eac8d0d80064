"""The task's side of the process executor: the fork server, and a task's own process.

The fork server is forked from the run's process once, when the first task is submitted:
the flow's module, ledgerflow and whatever the flow imports are loaded already, and it has
one thread. For each task it forks a child, so a task costs a fork, not an interpreter start,
and starts from the same clean state as every other task (module globals, os.environ, the
working directory, random state, signal handlers: nothing one task changes reaches another).

Messages on the control socket (datagrams, pickled tuples):
  runtime -> server  ("run", key, None) with the task's three file descriptors attached
                     (its stdout pipe, its stderr pipe, its socket to the runtime);
                     ("signal", key, signum)
  server -> runtime  ("started", key, pid); ("exited", key, wait status)
When the control socket closes (the run ended or died), the server kills what is left and
exits. On Linux the server and every task also die with their parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import socket
import sys
from typing import Any, NoReturn

from .. import rng
from .wire import die_with_parent, flush_stdio, own_stdio, recv_frame, send_frame


def serve(control: socket.socket) -> NoReturn:
    """The fork server's loop (in the freshly forked server process)."""
    try:
        die_with_parent()
        # Ctrl-C at the terminal goes to the run's process group; the runtime then stops
        # tasks itself and records them, so tasks live in a group of their own.
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        # Every object alive now moves out of the collector's sight: a task's collections
        # then never write to them, so their pages stay shared with the server instead of
        # being copied into each task (Python's advice for forking servers).
        states = rng.snapshot()
        gc.freeze()
        _loop(control, wake_r, wake_w, states)
    except OSError:
        pass  # the runtime closed the control socket: the run is over
    except BaseException:  # pragma: no cover  # noqa: BLE001 - a bug here: say so, and end
        import traceback

        traceback.print_exc()
    os._exit(0)


def _loop(control: socket.socket, wake_r: int, wake_w: int, states: dict[str, Any]) -> None:
    pids: dict[int, int] = {}  # pid -> task key
    keys: dict[int, int] = {}  # task key -> pid
    parent = os.getppid()
    # poll, not select: the run's process may hold over 1,024 descriptors (a notebook, a
    # test session), and select() cannot watch a descriptor numbered past that.
    poller = select.poll()
    for fd in (control.fileno(), wake_r):
        poller.register(fd, select.POLLIN)
    while True:
        readable = [fd for fd, _ in poller.poll(1000)]
        if os.getppid() != parent:  # the run's process died (where no PDEATHSIG says so)
            readable = [control.fileno()]
        if wake_r in readable:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
            _reap(control, pids, keys)
        if control.fileno() not in readable:
            continue
        msg, fds = b"", list[int]()
        if os.getppid() == parent:
            msg, fds, _flags, _addr = socket.recv_fds(control, 4096, 3)
        kind, key, arg = pickle.loads(msg) if msg else ("stop", 0, 0)
        if kind == "stop":  # the run is over, or its process is gone: nothing may outlive it
            for pid in pids:
                _kill(pid, signal.SIGKILL)
            return
        if kind == "run":
            pid = os.fork()
            if pid == 0:
                control.close()
                os.close(wake_r)
                os.close(wake_w)
                _task_child(fds, states)
            for fd in fds:
                os.close(fd)
            pids[pid], keys[key] = key, pid
            control.send(pickle.dumps(("started", key, pid)))
        elif kind == "signal" and key in keys:
            _kill(keys[key], arg)


def _reap(control: socket.socket, pids: dict[int, int], keys: dict[int, int]) -> None:
    while pids:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        key = pids.pop(pid, None)
        if key is not None:
            keys.pop(key, None)
            control.send(pickle.dumps(("exited", key, status)))


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _task_child(fds: list[int], states: dict[str, Any]) -> NoReturn:
    """In the task's freshly forked process: take the pipes as stdout/stderr, start from the
    random state a fresh process would have (rng.py), run the task."""
    rng.fresh_task_state(states)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    die_with_parent()
    out, err, sock = fds
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    run_child(sock)


def run_child(sock_fd: int) -> NoReturn:
    """Receive the task's spec, run it, send its result back, and exit without running any
    exit handler or waiting for threads the step left behind."""
    from ..task import StdStreams, run_task

    sock = socket.socket(fileno=sock_fd)
    own_stdio()
    code = 0
    try:
        frame = recv_frame(sock)
        if frame is None:
            os._exit(0)  # the run stopped before this task could begin
        spec = pickle.loads(frame)
        result = run_task(spec, StdStreams(), own_process=True)
        result.spec = None  # type: ignore[assignment]  # the runtime has it: not sent back
        flush_stdio()
        send_frame(sock, _dumps_result(result))
    except BaseException:  # noqa: BLE001 - the task's process reports anything and exits
        import traceback

        traceback.print_exc()
        code = 70  # EX_SOFTWARE: the runtime reports the task as failed with this output
    finally:
        flush_stdio()
        os._exit(code)


def _dumps_result(result: object) -> bytes:
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # noqa: BLE001 - an unpicklable result is reported as the task's failure
        # e.g. foreach values that pickle cannot send back by reference (a lambda): the task
        # fails with the reason rather than the run.
        from ..task import TaskResult

        assert isinstance(result, TaskResult)
        failed = TaskResult(None, "failed", result.started_at, result.finished_at,  # type: ignore[arg-type]
                            exception_type=type(e).__name__,
                            exception=f"cannot send the task's result to the run: {e}")  # fmt: skip
        return pickle.dumps(failed)


def spawn_main() -> NoReturn:
    """Entry point of a task started as a fresh interpreter (`python -m
    ledgerflow.executors.forkserver SOCK_FD FLOW_FILE FLOW_MODULE CLASS`): stdout/stderr are
    the pipes already. The flow's module is loaded first and stands in for the run's
    `__main__`, so values of classes the flow defines unpickle here as they were sent."""
    die_with_parent()
    sock_fd, flow_file, flow_module, class_name = sys.argv[1:5]
    from ..task import load_flow_class

    cls = load_flow_class(flow_file, flow_module, class_name)
    sys.modules[flow_module] = sys.modules[cls.__module__]
    run_child(int(sock_fd))


if __name__ == "__main__":
    spawn_main()
