"""Per-task capture of stdout/stderr that works when tasks run in threads.

`sys.stdout` and `sys.stderr` are replaced, once, by routers that send each write to the
capture of the task running in the writing thread, or to the real stream when none is.
A capture keeps the task's text for the ledger and echoes complete lines to the terminal
prefixed with the task's pathspec, like Metaflow's console.
"""

from __future__ import annotations

import io
import sys
import threading
from datetime import datetime
from typing import TextIO

_local = threading.local()
_install_lock = threading.Lock()
_echo_lock = threading.Lock()


class TaskCapture:
    """The captured stdout and stderr of one task."""

    def __init__(self, prefix: str, echo: bool):
        self.prefix = prefix
        self.echo = echo
        self.parts: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._partial: dict[str, str] = {"stdout": "", "stderr": ""}

    def write(self, stream: str, text: str) -> None:
        self.parts[stream].append(text)
        if self.echo:
            pending = self._partial[stream] + text
            *lines, self._partial[stream] = pending.split("\n")
            if lines:
                _echo(stream, self.prefix, lines)

    def text(self, stream: str) -> str:
        return "".join(self.parts[stream])

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest and self.echo:
                _echo(stream, self.prefix, [rest])
            self._partial[stream] = ""


def _echo(stream: str, prefix: str, lines: list[str]) -> None:
    real = _REAL[stream]
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    with _echo_lock:
        try:
            real.write("".join(f"{stamp} [{prefix}] {line}\n" for line in lines))
            real.flush()
        except (OSError, ValueError):
            # The terminal's reader went away (`run | head`): the text is still the task's
            # log; the echo must not fail the user's print().
            pass


class _Router(io.TextIOBase):
    def __init__(self, stream: str, real: TextIO):
        self.stream = stream
        self.real = real

    def write(self, text: str) -> int:  # type: ignore[override]
        capture = getattr(_local, "capture", None)
        if capture is None:
            return self.real.write(text)
        capture.write(self.stream, text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "capture", None) is None:
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
    """Route sys.stdout/sys.stderr through per-thread captures (idempotent)."""
    with _install_lock:
        if isinstance(sys.stdout, _Router):
            return
        _REAL["stdout"], _REAL["stderr"] = sys.stdout, sys.stderr
        sys.stdout = _Router("stdout", sys.stdout)  # type: ignore[assignment]
        sys.stderr = _Router("stderr", sys.stderr)  # type: ignore[assignment]


def uninstall() -> None:
    with _install_lock:
        if isinstance(sys.stdout, _Router):
            sys.stdout, sys.stderr = _REAL["stdout"], _REAL["stderr"]


def real_stream(stream: str = "stdout") -> TextIO:
    """The terminal stream, bypassing any capture."""
    return _REAL.get(stream) or (sys.stdout if stream == "stdout" else sys.stderr)


class capturing:
    """Context manager: capture this thread's output into a TaskCapture."""

    def __init__(self, capture: TaskCapture):
        self.capture = capture

    def __enter__(self) -> TaskCapture:
        install()
        _local.capture = self.capture
        return self.capture

    def __exit__(self, *exc: object) -> None:
        _local.capture = None
        self.capture.close()
