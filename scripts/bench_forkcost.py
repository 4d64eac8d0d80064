"""What one fork costs with what the fork server holds, and what the early fork server
(ledgerflow/executors/early.py) saves a task.

    PYTHONPATH=. .venv/bin/python scripts/bench_forkcost.py            # both parts
    PYTHONPATH=. .venv/bin/python scripts/bench_forkcost.py --pairs 14 --forks 1000

1. A bare fork and `_exit` (libc's, as the fork server forks), 1,000 times, from a process
   holding: a bare interpreter; the modules of the early fork server (the flow, ledgerflow's
   task path); those plus the command line's (what a server forked from the run's process
   holds). CPU of the parent and of the children a fork, with the process's anonymous
   memory and mappings.
2. foreach 1,000 + join with the early server and without (LEDGERFLOW_EARLY_SERVER=1 / 0),
   alternating, on this checkout: CPU a task of every process (the run's, the fork
   server's, the tasks'), medians and the median of the pairs' ratios. This machine drifts
   within minutes, so pairs run back to back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import write_flow  # (scripts/ is this script's folder)

# Run in a fresh interpreter: load what the mode names, then fork and _exit N times.
FORKS = """
import ctypes, gc, os, resource, runpy, sys
mode, flow, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode != "bare":
    sys.argv = [flow]
    runpy.run_path(flow, run_name="bench_flow")
    from ledgerflow import codec, joins, task, taskblobs, taskcards, taskoutput
    from ledgerflow.executors import forkserver
    if mode == "late":
        import ledgerflow.cli.flow_cli, ledgerflow.cli.run_flow, ledgerflow.runtime
        import ledgerflow.executors.processes
    forkserver._prepare_tasks()
gc.collect()
gc.freeze()
libc = ctypes.PyDLL(None)
fork, _exit = libc.fork, libc._exit
_exit.argtypes = [ctypes.c_int]
maps = sum(1 for _ in open("/proc/self/maps"))
anon = next(int(line.split()[1]) for line in open("/proc/self/smaps_rollup")
            if line.startswith("Anonymous:"))
me0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(n):
    pid = fork()
    if pid == 0:
        _exit(0)
    os.waitpid(pid, 0)
me1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = lambda a, b: (b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime) / n * 1e3
print(len(sys.modules), anon, maps, cpu(me0, me1), cpu(kids0, kids1))
"""


def fork_costs(folder: Path, flow: Path, forks: int, repeat: int) -> None:
    print(f"a bare fork + _exit, {forks:,} times (medians of {repeat}):")
    rows = {"bare": "a bare interpreter", "early": "the early fork server's modules",
            "late": "+ the command line's (a server forked late)"}  # fmt: skip
    samples: dict[str, list[list[float]]] = {mode: [] for mode in rows}
    for _ in range(repeat):
        for mode in rows:
            out = subprocess.run([sys.executable, "-c", FORKS, mode, str(flow), str(forks)],
                                 capture_output=True, text=True, check=True, cwd=folder)  # fmt: skip
            samples[mode].append([float(x) for x in out.stdout.split()])
    for mode, label in rows.items():
        mods, anon, maps, parent, child = (statistics.median(s[i] for s in samples[mode])
                                           for i in range(5))  # fmt: skip
        print(
            f"  {label:45} {mods:4.0f} modules {anon / 1024:5.1f} MB anonymous {maps:4.0f} "
            f"mappings: parent {parent:.3f} + child {child:.3f} = {parent + child:.3f} ms"
        )


def one_run(folder: Path, flow: Path, n: int, early: bool) -> float:
    """CPU a task of every process of one foreach of n (the run's, its children's)."""
    db = folder / "bench.db"
    for leftover in folder.glob("bench.db*"):
        leftover.unlink()
    env = dict(os.environ, LEDGERFLOW_EARLY_SERVER="1" if early else "0")
    env.pop("LEDGERFLOW_DB", None)
    code = ("import resource, runpy, sys; sys.argv = sys.argv[1:]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nfinally:\n"
            "    a, b = resource.getrusage(resource.RUSAGE_SELF), "
            "resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "    print('CPU', a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime, "
            "file=sys.stderr)\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(flow), "--db", str(db), "--quiet",
                           "run", "--n", str(n), "--max-num-splits", str(n)],
                          capture_output=True, text=True, env=env, cwd=folder)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    line = next(x for x in proc.stderr.splitlines() if x.startswith("CPU"))
    return float(line.split()[1]) / n * 1e3


def early_pairs(folder: Path, flow: Path, n: int, pairs: int) -> None:
    early, late = [], []
    for _ in range(pairs):
        early.append(one_run(folder, flow, n, True))
        late.append(one_run(folder, flow, n, False))
    ratios = sorted(a / b for a, b in zip(early, late))
    print(f"foreach {n:,} + join, CPU a task of every process, {pairs} alternating pairs "
          f"(load average {os.getloadavg()[0]:.2f}):")  # fmt: skip
    print(
        f"  early fork server {statistics.median(early):.3f} ms, forked late "
        f"{statistics.median(late):.3f} ms; pairs' ratio median "
        f"{statistics.median(ratios):.3f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-forkcost-") as tmp:
        folder = Path(tmp)
        flow = write_flow(folder, "foreach", "ledgerflow")  # bench.py's foreach + join
        started = time.perf_counter()
        fork_costs(folder, flow, args.forks, args.repeat)
        early_pairs(folder, flow, args.n, args.pairs)
        print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
