"""The run console for wide runs (ledgerflow/progress.py): the first task lines of each
step, then summaries (a pipe) or one live line (a terminal); --verbose keeps every line;
--quiet prints nothing. Unit tests drive the renderer with a fake clock; the end-to-end
tests run real flows through the real command line."""

from __future__ import annotations

import io
import re
from pathlib import Path

from ledgerflow.progress import FIRST_TASK_LINES, SUMMARY_EVERY, Progress
from tests.helpers import FLOWS, run_flow

WIDE = FLOWS / "engine" / "foreach.py"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _wide_step(progress: Progress, clock: Clock, n: int, fail: set[int] = frozenset()) -> None:
    progress.task_started("start", "[1/start/1]")
    progress.foreach_yields("[1/start/1]", "start", "fan", n)
    progress.task_ended("start", "[1/start/1]", "succeeded", "Task finished successfully.")
    for i in range(n):
        progress.task_started("fan", f"[1/fan/{i + 2}]")
    for i in range(n):
        clock.now += 0.01
        status = "failed" if i in fail else "succeeded"
        progress.task_ended("fan", f"[1/fan/{i + 2}]", status, "Task finished successfully.")
    progress.run_done()


def _lines(out: io.StringIO) -> list[str]:
    # drop the time stamp: '2026-11-30 05:45:58 +00:00 '
    return [
        re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d ", "", line)
        for line in out.getvalue().splitlines()
    ]


def test_a_pipe_gets_the_first_lines_then_summaries_and_a_last_one():
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, tty=False, clock=clock)
    _wide_step(progress, clock, 2000, fail={5, 1500})
    lines = _lines(out)
    assert lines[:3] == [
        "[1/start/1] Task is starting.",
        "[1/start/1] Foreach yields 2000 child steps.",
        "[1/start/1] Task finished successfully.",
    ]
    starts = [line for line in lines if line.endswith("Task is starting.")]
    ends = [line for line in lines if line.endswith("finished successfully.")]
    assert len(starts) == 1 + FIRST_TASK_LINES and len(ends) == FIRST_TASK_LINES  # one failed
    summaries = [line for line in lines if line.startswith("fan: ")]
    # 20 s of work: a summary every SUMMARY_EVERY seconds, then the last one.
    assert len(summaries) == int(20 / SUMMARY_EVERY)
    assert summaries[-1].startswith("fan: 2000/2000 done, 0 in progress, 2 failed, 20.0s, ")
    assert re.fullmatch(r"fan: \d+/2000 done, \d+ in progress, [12] failed, [\d.]+s, "
                        r"[\d.]+ tasks/s", summaries[0])  # fmt: skip
    assert len(lines) < 40  # not 4,000


def test_verbose_keeps_every_line_and_quiet_prints_nothing():
    out, clock = io.StringIO(), Clock()
    _wide_step(Progress(out, tty=False, verbose=True, clock=clock), clock, 300)
    lines = _lines(out)
    assert len(lines) == 3 + 2 * 300 and not any(line.startswith("fan: ") for line in lines)
    quiet = io.StringIO()
    _wide_step(Progress(quiet, quiet=True, clock=clock), clock, 300)
    assert quiet.getvalue() == ""


def test_a_terminal_gets_one_live_line_redrawn_in_place():
    out, clock = io.StringIO(), Clock()
    _wide_step(Progress(out, tty=True, clock=clock), clock, 500)
    text = out.getvalue()
    live = re.findall(r"\r\x1b\[K(fan: [^\r\n]*)\r", text)
    assert live and all(re.fullmatch(r"fan: \d+/500 done, \d+ in progress, 0 failed, [\d.]+s"
                                     r"(, [\d.]+ tasks/s)?", x) for x in live)  # fmt: skip
    # redrawn at most every REDRAW_EVERY seconds, and after each of the first task lines
    assert len(live) <= 5 / 0.1 + FIRST_TASK_LINES + 2
    # Lines printed around it clear it first; the last summary is a plain line.
    assert (
        text.rstrip("\n")
        .splitlines()[-1]
        .endswith("fan: 500/500 done, 0 in progress, 0 failed, 5.0s, 100.0 tasks/s")
    )


def test_a_narrow_run_prints_every_line():
    out, clock = io.StringIO(), Clock()
    _wide_step(Progress(out, tty=False, clock=clock), clock, FIRST_TASK_LINES)
    lines = _lines(out)
    assert len(lines) == 3 + 2 * FIRST_TASK_LINES
    assert not any(line.startswith("fan: ") for line in lines)


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_never_stops_the_run():
    progress = Progress(_ClosedPipe(), tty=False)
    progress.say("Workflow starting")
    progress.task_started("start", "[1/start/1]")  # would raise without the guard
    assert progress.out is None


def _write_wide_flow(folder: Path) -> Path:
    flow = folder / "wide_flow.py"
    flow.write_text(
        "from ledgerflow import FlowSpec, Parameter, step\n\n"
        "class WideFlow(FlowSpec):\n"
        "    n = Parameter('n', default=60)\n\n"
        "    @step\n    def start(self):\n        self.items = list(range(self.n))\n"
        "        self.next(self.fan, foreach='items')\n\n"
        "    @step\n    def fan(self):\n        self.y = self.input\n        self.next(self.join)\n\n"
        "    @step\n    def join(self, inputs):\n        self.total = sum(i.y for i in inputs)\n"
        "        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n"
        "if __name__ == '__main__':\n    WideFlow()\n"
    )
    return flow


def test_a_wide_run_through_the_cli_prints_a_summary_not_every_task(db_path, tmp_path):
    flow = _write_wide_flow(tmp_path)
    proc = run_flow(flow, db=db_path, top=())
    lines = proc.stdout.splitlines()
    assert any(line.endswith("Foreach yields 60 child steps.") for line in lines)
    fan_lines = [line for line in lines if "/fan/" in line]
    assert len(fan_lines) == 2 * FIRST_TASK_LINES
    assert any(re.search(r" fan: 60/60 done, 0 in progress, 0 failed, ", line) for line in lines)
    assert lines[-1].endswith("Done!")
    # every time on screen carries its UTC offset
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d ", line)
               for line in lines[1:])  # fmt: skip
    verbose = run_flow(flow, db=db_path, top=("--verbose",)).stdout.splitlines()
    assert len([line for line in verbose if "/fan/" in line]) == 120
    assert not any(" fan: 60/60" in line for line in verbose)
    assert run_flow(flow, db=db_path).stdout.strip().isdigit()  # --quiet: the run id only


def test_long_commands_show_progress_the_same_way():
    from ledgerflow.progress import Counter

    clock = Clock()
    pipe = io.StringIO()
    counter = Counter("checking blobs", pipe, tty=False, clock=clock)
    for done in range(1, 2001):
        clock.now += 0.01  # 20 s in all
        counter(done, 2000)
    lines = _lines(pipe)
    assert lines[0] == "checking blobs: 100/2000, 1.0s, 100.0/s"  # quiet for the first second
    assert lines[-1] == "checking blobs: 2000/2000, 20.0s, 100.0/s"
    assert len(lines) == 2 + int((20 - 1) / SUMMARY_EVERY)
    quick, clock = io.StringIO(), Clock()
    counter = Counter("checking blobs", quick, tty=False, clock=clock)
    for done in range(1, 11):
        counter(done, 10)
    assert quick.getvalue() == ""  # a quick command prints nothing
    tty, clock = io.StringIO(), Clock()
    counter = Counter("importing runs", tty, tty=True, clock=clock)
    for done in range(1, 301):
        clock.now += 0.01
        counter(done, 300)
    live = re.findall(r"\r\x1b\[K(importing runs: [^\r\n]*)\r", tty.getvalue())
    assert 15 <= len(live) <= 21 and live[0].startswith("importing runs: 100/300")
    assert tty.getvalue().endswith("importing runs: 300/300, 3.0s, 100.0/s\n")


def test_a_nested_foreach_adds_to_the_inner_steps_total():
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, tty=False, clock=clock)
    for parent in (1, 2):
        prefix = f"[1/outer/{parent}]"
        progress.task_started("outer", prefix)
        progress.foreach_yields(prefix, "outer", "inner", 30)
        progress.task_ended("outer", prefix, "succeeded", "Task finished successfully.")
        for i in range(30):
            progress.task_started("inner", f"[1/inner/{parent}{i}]")
        for i in range(30):
            clock.now += 0.1
            progress.task_ended("inner", f"[1/inner/{parent}{i}]", "succeeded", "ok")
    progress.run_done()
    summaries = [line for line in _lines(out) if line.startswith("inner: ")]
    assert summaries[-1].startswith("inner: 60/60 done, 0 in progress, 0 failed, 6.0s")
    assert sum(line.startswith("inner: 30/30 done") for line in summaries) == 1
    assert sum("Foreach yields 30 child steps." in line for line in _lines(out)) == 2
