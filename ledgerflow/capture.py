"""Routing `sys.stdout`/`sys.stderr` writes to the task running in the writing thread, for
the executors that run tasks in the run's own process (threads, sequential).

`sys.stdout` and `sys.stderr` are replaced, once, by routers that send each write to the
output sink of the task running in the writing thread, or to the real stream when none is.
(A task in a process of its own needs none of this: its file descriptors 1 and 2 are pipes
to the runtime; see executors/processes.py.)
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Protocol, TextIO


class OutputSink(Protocol):
    """Where a running task's output goes (the runtime's TaskLog)."""

    def write(self, stream: str, text: str) -> None: ...


_local = threading.local()
_install_lock = threading.Lock()


class _Router(io.TextIOBase):
    def __init__(self, stream: str, real: TextIO):
        self.stream = stream
        self.real = real

    def write(self, text: str) -> int:  # type: ignore[override]
        sink = getattr(_local, "sink", None)
        if sink is None:
            return self.real.write(text)
        sink.write(self.stream, text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "sink", None) is None:
            self.real.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.real, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.real.fileno()


_REAL: dict[str, TextIO] = {}


def install() -> None:
    """Route sys.stdout/sys.stderr through per-thread sinks (idempotent)."""
    with _install_lock:
        if isinstance(sys.stdout, _Router):
            return
        _REAL["stdout"], _REAL["stderr"] = sys.stdout, sys.stderr
        sys.stdout = _Router("stdout", sys.stdout)  # type: ignore[assignment]
        sys.stderr = _Router("stderr", sys.stderr)  # type: ignore[assignment]


def real_stream(stream: str = "stdout") -> TextIO:
    """The terminal stream, bypassing any routing."""
    return _REAL.get(stream) or (sys.stdout if stream == "stdout" else sys.stderr)


class capturing:
    """Context manager: send this thread's sys.stdout/sys.stderr writes to `sink`."""

    def __init__(self, sink: OutputSink):
        self.sink = sink

    def __enter__(self) -> OutputSink:
        install()
        _local.sink = self.sink
        return self.sink

    def __exit__(self, *exc: object) -> None:
        _local.sink = None
