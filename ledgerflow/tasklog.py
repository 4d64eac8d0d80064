"""A running task's output as the runtime receives it: echoed to the terminal line by line,
prefixed with the task's pathspec (like Metaflow's console), and held until the runtime
commits it to the ledger (runtime.py flushes every LOG_FLUSH_EVERY seconds or
LOG_FLUSH_BYTES, whichever comes first), where logstore.py keeps it as compressed pieces:
what waits here is at most about LOG_FLUSH_BYTES a task, however much it prints.

Executors call `write` from their own threads; the runtime calls `take` from its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .capture import real_stream
from .clock import screen_time

LOG_FLUSH_EVERY = 1.0  # seconds
LOG_FLUSH_BYTES = 64 * 1024

_echo_lock = threading.Lock()  # one line at a time on the terminal, whichever task wrote it


class TaskLog:
    """The output sink of one task attempt."""

    def __init__(self, prefix: str, echo: bool, on_full: Callable[[], None] | None = None):
        self.prefix = prefix
        self.echo = echo
        self.on_full = on_full  # called once the unsaved text reaches LOG_FLUSH_BYTES
        self.pending_chars = 0
        self._lock = threading.Lock()
        self._pending: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._partial: dict[str, str] = {"stdout": "", "stderr": ""}

    def write(self, stream: str, text: str) -> None:
        if not text:
            return
        with self._lock:
            self._pending[stream].append(text)
            full = self.pending_chars < LOG_FLUSH_BYTES <= self.pending_chars + len(text)
            self.pending_chars += len(text)
            if self.echo:
                *lines, self._partial[stream] = (self._partial[stream] + text).split("\n")
                if lines:
                    _echo(stream, self.prefix, lines)
        if full and self.on_full is not None:
            self.on_full()

    def take(self) -> tuple[str, str]:
        """What arrived since the last take: (stdout, stderr)."""
        if not self.pending_chars:  # (most tasks print nothing: no lock, no joins)
            return "", ""
        with self._lock:
            out, err = ("".join(self._pending[s]) for s in ("stdout", "stderr"))
            self._pending = {"stdout": [], "stderr": []}
            self.pending_chars = 0
            return out, err

    def close(self) -> None:
        """Echo what is left of an unfinished last line."""
        if not self.echo:
            return  # (nothing is kept of lines that are not echoed)
        with self._lock:
            for stream, rest in self._partial.items():
                if rest and self.echo:
                    _echo(stream, self.prefix, [rest])
                self._partial[stream] = ""


def _echo(stream: str, prefix: str, lines: list[str]) -> None:
    stamp = screen_time()  # the one rule for times on screens (clock.py)
    with _echo_lock:
        try:
            real = real_stream(stream)
            real.write("".join(f"{stamp} {prefix} {line}\n" for line in lines))
            real.flush()
        except (OSError, ValueError):
            # The terminal's reader went away (`run | head`): the text is still the task's
            # log; the echo must not fail the run.
            pass
