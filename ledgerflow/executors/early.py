"""The fork server forked early: as the flow's module finishes loading (`MyFlow()` at its
end), before the command line loads.

Every task is forked from the fork server, and a fork copies the server's page tables and
tears them down again when the task exits: its cost grows with the server's memory and
mappings. Forked where the run's process starts its first task (forkserver.py), the server
holds the command line too (click, the runtime, inspect: ~40 modules, 3 MB of objects and
30 mappings that no task uses). Forked here, it holds the flow's module, what the flow
imported, and ledgerflow's task path, which it loads while the command line loads in the
run's process. Measured on foreach 1,000, on and off in alternating pairs: 0.92-0.94x the
CPU a task (scripts/bench_forkcost.py, docs/performance.md).

What the command line changes in its process before the run's first task reaches the early
server in the run's setup (`take`): the process environment, sys.path and the working
directory; the configs' values and the `--with` decorators, applied again to its copy of
the flow class as the command line applied them; the Client API's namespace. The flow
class's steps, decorators, configs and parameters are then described on both sides
(`class_digest`) and must match: else the early server exits, and the run forks its server
from its own process, as without one. A run that does not use it (another executor, a
usage error, `--help`) dismisses it (`dismiss`), or its end does.

Whatever the command line comes to change in its process before the run starts, and tasks
read, belongs in `_setup` (and `_apply`), or in `class_digest` if it is the flow class's:
a late-forked server inherits it, this one does not.

Messages (the socket is SEQPACKET, then the server's control socket): runtime -> early
server, the setup as pickled chunks and an empty message after them; early server ->
runtime, b"ready" (it serves from now on: forkserver.serve) or b"stale".
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, NoReturn

# (pid, the runtime's end of its socket, the flow class) of the early server not yet taken.
_EARLY: list[tuple[int, socket.socket, type]] = []
# The setup travels in messages of this size (a SEQPACKET message has a size limit).
_CHUNK = 32 * 1024
# How long the run waits for the early server's answer: it may still be loading the task
# path on a busy machine. Past this the run forks its own server.
ANSWER_TIMEOUT = 60.0


def fork_early(flow_cls: type, args: list[str]) -> None:
    """Fork the early server if the command line `args` may run tasks in processes of their
    own (`run` or `resume`, no other `--executor`); nothing else otherwise."""
    if _EARLY or not _may_run_in_processes(args):
        return
    # What both sides need, loaded once before the fork rather than in each after it
    # (~20 ms of CPU a run): the run's process uses these to start and read its tasks.
    from .. import taskblobs, taskoutput  # noqa: F401
    from . import forkserver  # noqa: F401

    sys.stdout.flush()  # else the server, and every task, would inherit unflushed text
    sys.stderr.flush()
    ledger = sys.modules.get("ledgerflow.ledger")
    if ledger is not None:  # (the flow's module opened a ledger: as processes.py does)
        ledger.Ledger.release_connections()
    try:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:  # (out of descriptors: the run forks its server later, or says why)
        return
    try:
        pid = os.fork()
    except OSError:
        mine.close()
        theirs.close()
        return
    if pid == 0:
        mine.close()
        _early_server(theirs, flow_cls)
    theirs.close()
    _EARLY.append((pid, mine, flow_cls))


def _may_run_in_processes(args: list[str]) -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("LEDGERFLOW_EARLY_SERVER") == "0":
        return False
    if "run" not in args and "resume" not in args:
        return False
    from . import DEFAULT_EXECUTOR

    executor = DEFAULT_EXECUTOR
    for i, arg in enumerate(args):
        if arg == "--executor" and i + 1 < len(args):
            executor = args[i + 1]
        elif arg.startswith("--executor="):
            executor = arg.partition("=")[2]
    return executor == "process"


def take(flow_cls: type) -> tuple[int, socket.socket] | None:
    """In the run's process, as it starts its fork server: the early server's pid and
    control socket, once it took the run's setup and answered ready; else None (there is
    none, or it was dismissed: the run forks its own)."""
    if not _EARLY:
        return None
    pid, sock, early_cls = _EARLY.pop()
    if early_cls is not flow_cls:
        _end(pid, sock)
        return None
    try:
        import pickle

        data = pickle.dumps(_setup(flow_cls), protocol=pickle.HIGHEST_PROTOCOL)
        sock.settimeout(ANSWER_TIMEOUT)  # (a large setup waits for it to read, too)
        for start in range(0, len(data), _CHUNK):
            sock.send(data[start : start + _CHUNK])
        sock.send(b"")
        answer = sock.recv(16)
        sock.settimeout(None)
    except Exception:  # noqa: BLE001 - unsendable setup, a server gone or silent: fork one here
        answer = b""
    if answer != b"ready":
        _end(pid, sock)
        return None
    return pid, sock


def dismiss() -> None:
    """The run will not use the early server (another executor): it ends now."""
    while _EARLY:
        pid, sock, _ = _EARLY.pop()
        _end(pid, sock)


def _end(pid: int, sock: socket.socket) -> None:
    sock.close()  # it exits when its socket closes: reaped here
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _setup(flow_cls: type) -> dict[str, Any]:
    context = sys.modules.get("ledgerflow.client.context")
    return {
        "environ": dict(os.environ),
        "path": list(sys.path),
        "cwd": os.getcwd(),
        "configs": flow_cls.__dict__.get("_lf_config_values"),
        "with": list(flow_cls.__dict__.get("_lf_with_applied", ())),
        "namespace": context._namespace if context is not None else False,  # type: ignore[attr-defined]
        "digest": class_digest(flow_cls),
    }


def class_digest(flow_cls: type) -> str:
    """What tasks read of the flow class, as text: each step's decorators with their
    attributes, the parameters, the flow's decorators, the configs' values."""
    from ..parameters import Parameter

    parts: list[Any] = []
    for name in dir(flow_cls):
        value = getattr(flow_cls, name, None)
        if getattr(value, "is_step", False):
            decorators = getattr(value, "decorators", ())
            parts.append((name, [(type(d).__name__, sorted(vars(d).items())) for d in decorators]))
        elif isinstance(value, Parameter):
            parts.append((name, type(value).__name__, sorted(vars(value).items())))
    parts.append(getattr(flow_cls, "_flow_decorators", None))
    parts.append(flow_cls.__dict__.get("_lf_config_values"))
    return repr(parts)


# -- the early server's side ------------------------------------------------------------


def _early_server(sock: socket.socket, flow_cls: type) -> NoReturn:
    """Load the task path, wait for the run's setup, apply it, and serve; exit when the run
    ends without taking it, or when the flow class does not come out as the run's."""
    try:
        from .wire import die_with_parent

        die_with_parent()
        os.setpgid(0, 0)  # as forkserver.serve: Ctrl-C reaches the run, which stops tasks
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from .. import codec, joins, task, taskblobs, taskcards, taskoutput  # noqa: F401  (a task's modules)
        from . import forkserver

        setup = _receive_setup(sock)
        if setup is None:
            os._exit(0)
        _apply(setup, flow_cls)
        if class_digest(flow_cls) != setup["digest"]:
            sock.send(b"stale")
            os._exit(0)
        sock.send(b"ready")
    except BaseException:  # noqa: BLE001 - the run forks its own server: nothing is lost
        os._exit(0)
    forkserver.serve(sock)


def _receive_setup(sock: socket.socket) -> dict[str, Any] | None:
    import pickle

    chunks = []
    while True:
        chunk = sock.recv(_CHUNK)  # b"" also when the run's end closes: then nothing came
        if not chunk:
            break
        chunks.append(chunk)
    if not chunks:
        return None
    return pickle.loads(b"".join(chunks))  # noqa: S301 - from the run's own process


def _apply(setup: dict[str, Any], flow_cls: type) -> None:
    os.environ.clear()
    os.environ.update(setup["environ"])
    sys.path[:] = setup["path"]
    if os.getcwd() != setup["cwd"]:
        os.chdir(setup["cwd"])
    if setup["configs"] is not None:
        from ..configs import apply_configs

        apply_configs(flow_cls, setup["configs"])
    if setup["with"]:
        from ..decorators import apply_with

        apply_with(flow_cls, setup["with"])
    if setup["namespace"] is not False:
        from ..client import context

        context._namespace = setup["namespace"]  # type: ignore[attr-defined]
    from ..flowclasses import register_flow_class

    register_flow_class(flow_cls)  # type: ignore[arg-type]
