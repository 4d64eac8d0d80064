"""`run --reuse`: what it saves, and what computing keys costs every run.

    .venv/bin/python scripts/bench_reuse.py [--seconds 1] [--width 1000] [--repeat 5]

1. A six-step flow whose steps each take `--seconds` (sleeping, as a step waiting on work
   would): a full run; then, with --reuse, after editing only the last step (only it should
   run); then after editing a helper only the fourth step calls (the fourth, fifth and sixth
   should run). Wall-clock seconds of each `python flow.py run` process.
2. Key cost: a foreach of `--width` trivial tasks + join run in this process with the thread
   executor (so all the work is this process's CPU time), with keys computed as every run
   does, against the same run with key computation replaced by a no-op, interleaved, median
   of `--repeat`. Printed as CPU ms per task, the difference and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SIX = """
import time
from ledgerflow import FlowSpec, step

SECONDS = {seconds}

def helper(x):
    return x + 1

class SixFlow(FlowSpec):
    @step
    def start(self):
        time.sleep(SECONDS); self.a = 1
        self.next(self.s2)

    @step
    def s2(self):
        time.sleep(SECONDS); self.b = self.a + 1
        self.next(self.s3)

    @step
    def s3(self):
        time.sleep(SECONDS); self.c = self.b + 1
        self.next(self.s4)

    @step
    def s4(self):
        time.sleep(SECONDS); self.d = helper(self.c)
        self.next(self.s5)

    @step
    def s5(self):
        time.sleep(SECONDS); self.e = self.d + 1
        self.next(self.end)

    @step
    def end(self):
        time.sleep(SECONDS); print("e =", self.e)

if __name__ == "__main__":
    SixFlow()
"""

WIDE = """
from ledgerflow import FlowSpec, step

class WideFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range({width}))
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.v = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.v for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def timed_run(flow: Path, db: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(flow), "--db", str(db), "--quiet", "run", *args],
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def edits(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        flow, db = Path(tmp) / "six.py", Path(tmp) / "bench.db"
        flow.write_text(textwrap.dedent(SIX.format(seconds=seconds)))
        full = timed_run(flow, db)
        flow.write_text(flow.read_text().replace('print("e =", self.e)', 'print("e:", self.e)'))
        last = timed_run(flow, db, "--reuse")
        flow.write_text(flow.read_text().replace("return x + 1", "return x + 2"))
        helper = timed_run(flow, db, "--reuse")
        again = timed_run(flow, db, "--reuse")
    print(f"six steps of {seconds:g} s each (wall, whole process):")
    print(f"  full run                               {full:6.2f} s")
    print(f"  --reuse after editing the last step    {last:6.2f} s  ({full / last:.1f}x faster)")
    print(
        f"  --reuse after editing s4's helper      {helper:6.2f} s  ({full / helper:.1f}x faster)"
    )
    print(f"  --reuse with nothing changed           {again:6.2f} s")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def key_cost(width: int, repeat: int) -> None:
    import importlib.util

    from ledgerflow import taskreuse
    from ledgerflow.executors.inprocess import ThreadExecutor
    from ledgerflow.ledger import Ledger
    from ledgerflow.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide_flow.py"
        path.write_text(textwrap.dedent(WIDE.format(width=width)))
        spec = importlib.util.spec_from_file_location("wide_flow", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["wide_flow"] = module
        spec.loader.exec_module(module)
        ledger = Ledger.open(Path(tmp) / "bench.db")
        real_key = taskreuse.TaskKeys.key

        def one(with_keys: bool) -> float:
            taskreuse.TaskKeys.key = real_key if with_keys else (lambda self, s, i: None)  # type: ignore[method-assign]
            runtime = Runtime(module.WideFlow, ledger, {}, executor=ThreadExecutor(2),
                              quiet=True, max_num_splits=width)  # fmt: skip
            start = cpu()
            outcome = runtime.run()
            assert outcome.status == "succeeded"
            return (cpu() - start) * 1000 / (width + 3)

        one(True)  # warm up
        on, off = [], []
        for _ in range(repeat):
            on.append(one(True))
            off.append(one(False))
        taskreuse.TaskKeys.key = real_key  # type: ignore[method-assign]
    a, b = statistics.median(on), statistics.median(off)
    print(
        f"foreach of {width} trivial tasks + join, --executor thread, CPU per task "
        f"(median of {repeat}, load {os.getloadavg()[0]:.1f}):"
    )
    print(f"  keys computed (every run)   {a:.3f} ms")
    print(f"  keys not computed           {b:.3f} ms")
    print(f"  key cost                    {a - b:+.3f} ms per task (ratio {a / b:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    edits(args.seconds)
    key_cost(args.width, args.repeat)


if __name__ == "__main__":
    main()
