"""What a run prints about itself while it runs, wide or narrow.

The runtime reports events (a run line, a task started / finished / failed / caught /
cloned, a foreach yielding N children, the run done) and `Progress` decides what to print:

- every line, as Metaflow does, with `--verbose`, or when a step has few tasks: the first
  FIRST_TASK_LINES tasks of each step always get their lines;
- beyond those, on a terminal: one live status line, redrawn at most every REDRAW_EVERY
  seconds, with each busy step's done/running/failed of total, elapsed time and rate;
- beyond those, when stdout is not a terminal (a log file, CI): a summary line per busy step
  every SUMMARY_EVERY seconds, and a last one when the step is done;
- nothing with `--quiet` (the runtime prints failures to stderr itself).

A small renderer rather than rich or tqdm: both draw bars on a terminal only, and neither
has the "first lines, then periodic summaries" rendering a log file needs; the output here
is a few formatted lines, and the run path stays free of a dependency it would import
before its first task. Writing never fails a run: if stdout is closed (`| head`), the
display goes quiet and the run goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TextIO

from .clock import screen_time

FIRST_TASK_LINES = 10  # per step, printed in full before summaries take over
SUMMARY_EVERY = 5.0  # seconds between summary lines when stdout is not a terminal
REDRAW_EVERY = 0.1  # seconds between redraws of the live line on a terminal


class _StepCount:
    """Tasks of one step: how many the foreach(es) announced, started, ended, failed."""

    __slots__ = ("ended", "failed", "first_at", "open", "shown", "started", "summed", "total")

    def __init__(self, now: float):
        self.total = 0
        self.started = self.ended = self.failed = 0
        self.first_at = now
        self.shown = 0  # tasks whose lines were printed (at most FIRST_TASK_LINES)
        self.open: set[str] = set()  # shown tasks still running: their end is shown too
        self.summed = -1  # `ended` when its last summary was printed

    @property
    def cut(self) -> bool:
        """Some of its tasks' lines were left out (so summaries tell about them)."""
        return self.shown < self.started

    @property
    def running(self) -> int:
        return self.started - self.ended

    def text(self, step: str, now: float) -> str:
        elapsed = max(now - self.first_at, 1e-9)
        of = f"/{self.total}" if self.total and self.total >= self.ended else ""
        rate = f", {self.ended / elapsed:.1f} tasks/s" if self.ended else ""
        return (f"{step}: {self.ended}{of} done, {self.running} in progress, {self.failed} failed, "
                f"{elapsed:.1f}s{rate}")  # fmt: skip


class Progress:
    """The run's console. One instance per run; called from the runtime's loop only."""

    def __init__(self, out: TextIO, *, quiet: bool = False, verbose: bool = False,
                 tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.out = out
        self.quiet = quiet
        self.verbose = verbose
        self.tty = _is_tty(out) if tty is None else tty
        self.clock = clock
        self.steps: dict[str, _StepCount] = {}
        self._next_summary = clock() + SUMMARY_EVERY
        self._next_redraw = 0.0
        self._live = ""  # the live line now on screen (terminal only)

    # -- events ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A line about the run as a whole ('Workflow starting', 'Done!'): always shown."""
        self._line(text)

    def task_started(self, step: str, prefix: str) -> None:
        count = self._step(step)
        count.started += 1
        if self.verbose or count.shown < FIRST_TASK_LINES:
            count.shown += 1
            count.open.add(prefix)
            self._line(f"{prefix} Task is starting.")
        self._tick()

    def task_ended(self, step: str, prefix: str, status: str, text: str = "") -> None:
        """status: succeeded | caught | cloned | failed. A failure's lines go to stderr from
        the runtime, always; it is only counted here."""
        count = self._step(step)
        count.ended += 1
        shown = prefix in count.open
        count.open.discard(prefix)
        if status == "cloned":
            count.started += 1  # a clone never starts
            if count.shown < FIRST_TASK_LINES:
                count.shown += 1
                shown = True
        if status == "failed":
            count.failed += 1
            # The runtime prints the failure on stderr next: leave it a clean line (the live
            # line comes back at the next event).
            self._clear_live()
            return
        if self.verbose or shown or status == "caught":
            self._line(f"{prefix} {text}")
        if count.cut and not self.verbose and count.ended == count.total and not count.running:
            count.summed = count.ended  # all its tasks are done: say so now, not at the end
            self._line(count.text(step, self.clock()))
        self._tick()

    def task_note(self, prefix: str, text: str) -> None:
        """A line about one task that is always worth showing (a retry)."""
        self._line(f"{prefix} {text}")

    def foreach_yields(self, prefix: str, step: str, child_step: str, n: int) -> None:
        """A task of `step` split into n children of `child_step`; Metaflow prints this line
        too (here: for the tasks whose lines are shown)."""
        self._step(child_step).total += n
        parent = self.steps.get(step)
        if self.verbose or parent is None or prefix in parent.open:
            self._line(f"{prefix} Foreach yields {n} child steps.")

    def run_done(self) -> None:
        """A last summary of each step whose task lines were cut short; the live line goes."""
        now = self.clock()
        self._clear_live()
        if self.verbose:
            return
        for step, count in self.steps.items():
            if count.cut and count.summed != count.ended:  # (a nested foreach may add more)
                self._line(count.text(step, now))

    # -- rendering ---------------------------------------------------------------------

    def _step(self, step: str) -> _StepCount:
        count = self.steps.get(step)
        if count is None:
            count = self.steps[step] = _StepCount(self.clock())
        return count

    def _busy(self) -> list[tuple[str, _StepCount]]:
        """Steps with tasks beyond the first lines and work still to do."""
        return [(s, c) for s, c in self.steps.items()
                if c.cut and (c.running or c.ended < c.total)]  # fmt: skip

    def _tick(self) -> None:
        if self.quiet or self.verbose:
            return
        now = self.clock()
        if self.tty:
            if now >= self._next_redraw:
                self._next_redraw = now + REDRAW_EVERY
                self._draw_live(now)
            return
        if now >= self._next_summary:
            self._next_summary = now + SUMMARY_EVERY
            for step, count in self._busy():
                self._line(count.text(step, now))

    def _draw_live(self, now: float) -> None:
        import shutil  # here: a terminal only, and not on every run's import path

        parts = [count.text(step, now) for step, count in self._busy()]
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        live = " | ".join(parts)[:width]
        if live != self._live:
            # '\r' after the line: output printed by tasks starts at column 0, over it.
            self._write(f"\r\x1b[K{live}\r")
            self._live = live

    def _clear_live(self) -> None:
        if self._live:
            self._write("\r\x1b[K")
            self._live = ""

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        self._clear_live()
        self._write(f"{screen_time()} {text}\n")
        if self.tty and not self.verbose:
            self._next_redraw = 0.0  # put the live line back at the next event

    def _write(self, text: str) -> None:
        if self.out is None:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # a closed pipe or stream: stop showing, keep running
            self.out = None  # type: ignore[assignment]


def _is_tty(out: TextIO) -> bool:
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


class Counter:
    """Progress of a long command (doctor's blob check, export, import) as a callable
    `(done, total)`: 'checking blobs: 500/1000, 2.1s, 238.1/s'. The same renderings as a
    run: a live line on a terminal, else a line every SUMMARY_EVERY seconds and a last one.
    Nothing until the work has taken SHOW_AFTER seconds, so quick commands stay quiet."""

    SHOW_AFTER = 1.0

    def __init__(self, label: str, out: TextIO | None = None, *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        import sys

        out = sys.stderr if out is None else out  # stdout stays the command's output
        self.label = label
        self.clock = clock
        self.started = clock()
        self.shown = False
        self._next = self.started + self.SHOW_AFTER
        self._console = Progress(out, tty=tty, clock=clock)

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        last = done >= total
        if now < self._next and not (last and self.shown):
            return
        elapsed = max(now - self.started, 1e-9)
        text = f"{self.label}: {done}/{total}, {elapsed:.1f}s, {done / elapsed:.1f}/s"
        console = self._console
        if console.tty and not last:
            self._next = now + REDRAW_EVERY
            console._write(f"\r\x1b[K{text}\r")
            console._live = text
        else:
            self._next = now + SUMMARY_EVERY
            console._line(text)
        self.shown = True
