"""What the flow command's parser (click) costs a linear run: the whole process (wall and CPU
of the process tree, medians) and, inside one process, importing click, building the
command and parsing. Bytecode caching is on, as users have it. See docs/performance.md
("One parser").

    .venv/bin/python scripts/bench_parser.py --repeat 20
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The linear flow bench.py times ("linear"): one definition for both benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import write_flow  # noqa: E402

# Inside one process: the base imports a run needs, then click's part.
_INSIDE = """
import sys, time
t0 = time.perf_counter()
import ledgerflow, ledgerflow.task, ledgerflow.runtime, ledgerflow.cli.run_flow
t1 = time.perf_counter()
import click
t2 = time.perf_counter()
from ledgerflow.cli.flow_cli import build_cli
import runpy
cls = runpy.run_path(sys.argv[1], run_name="bench")["LinearBench"]
t3 = time.perf_counter()
cli = build_cli(cls)
t4 = time.perf_counter()
cli.make_context("flow.py", ["--db", sys.argv[2], "--quiet", "run"])
t5 = time.perf_counter()
print(t2 - t1, t4 - t3, t5 - t4)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users have bytecode caching on
    with tempfile.TemporaryDirectory(prefix="bench-parser-") as tmp:
        flow = write_flow(Path(tmp), "linear", "ledgerflow")
        db = str(Path(tmp) / "ledgerflow.db")
        cmd = [sys.executable, str(flow), "--db", db, "--quiet", "run"]
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # ledger and caches
        walls, cpus = [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        inside = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-c", _INSIDE, str(flow), db],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            inside.append([float(x) for x in out.split()])
    ms = lambda xs: f"{statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f})"  # noqa: E731
    print(f"linear run, whole process: wall {ms(walls)}, CPU {ms(cpus)}")
    click_import, build, parse = zip(*inside)
    print(
        f"inside: import click {ms(click_import)}, build the command {ms(build)}, parse {ms(parse)}"
    )
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
