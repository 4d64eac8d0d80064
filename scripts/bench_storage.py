"""Did a change to the storage layer make a write or a read slower? This checkout against
another (`--baseline DIR`, e.g. `git archive <commit> | tar -x -C DIR`), in the same
invocation, rounds interleaved, medians; each measurement a fresh process.

    .venv/bin/python scripts/bench_storage.py --baseline /tmp/base --repeat 5

- write: a foreach of N tasks (each storing three artifacts) with `--executor thread`, so the
  run process does every write itself: CPU and wall of that process.
- read: on the ledger each checkout wrote, a fresh process reads through the Client API every
  task of the foreach and two of its artifacts, the run's `data` and its steps; then
  `ledgerflow runs` and `ledgerflow show` of the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOW = """
from ledgerflow import FlowSpec, Parameter, step


class StorageFlow(FlowSpec):
    n = Parameter("n", default=1000)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.x = self.input * 2
        self.label = f"item {self.input}"
        self.row = {"i": self.input, "squares": [self.input ** 2] * 8}
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.x for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    StorageFlow()
"""

# Runs a command in this process after noting rusage; prints the process's own CPU.
MEASURED = """
import resource, runpy, sys, time
started = time.perf_counter()
sys.argv = sys.argv[1:]
try:
    if sys.argv[0] == "-m":
        sys.argv = sys.argv[1:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    if e.code not in (None, 0):
        raise
finally:
    r = resource.getrusage(resource.RUSAGE_SELF)
    print("MEASURED", r.ru_utime + r.ru_stime, time.perf_counter() - started, file=sys.stderr)
"""

READ = """
import sys
from ledgerflow import Flow, namespace
namespace(None)
run = Flow("StorageFlow").latest_run
n = 0
for task in run["body"]:
    n += task.data.x + len(task.data.label)
assert n > 0
data = run.data
assert data.total > 0
assert [s.id for s in run]
"""


def _env(source: Path) -> dict[str, str]:
    """`source` first on the path, bytecode cached as a user's install has it (a checkout
    without its .pyc files would pay for compiling every module in every process)."""
    env = dict(os.environ, PYTHONPATH=str(source))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure(source: Path, args: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU s, wall s) of `python <args>` with `source` first on the path."""
    env = _env(source)
    proc = subprocess.run([sys.executable, "-c", MEASURED, *args], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip
    line = [x for x in proc.stderr.splitlines() if x.startswith("MEASURED")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    cpu, wall = (float(x) for x in line[-1].split()[1:])
    return cpu, wall


def round_of(source: Path, folder: Path, n: int) -> dict[str, tuple[float, float]]:
    db = folder / "ledgerflow.db"
    for leftover in folder.glob("ledgerflow.db*"):
        leftover.unlink()
    flow = folder / "storage_flow.py"
    read = folder / "read.py"
    out = {}
    out["write"] = measure(source, [str(flow), "--db", str(db), "--quiet", "run", "--n", str(n),
                                    "--max-num-splits", str(n), "--executor", "thread"],
                           folder)  # fmt: skip
    env_db = ["--db", str(db)]
    os.environ["LEDGERFLOW_DB"] = str(db)
    try:
        out["read (Client API)"] = measure(source, [str(read)], folder)
        out["ledgerflow runs"] = measure(source, ["-m", "ledgerflow", *env_db, "runs"], folder)
        out["ledgerflow show"] = measure(
            source, ["-m", "ledgerflow", *env_db, "show", "StorageFlow"], folder
        )
    finally:
        del os.environ["LEDGERFLOW_DB"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="another checkout to compare with")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n", type=int, default=1000, help="the foreach's width")
    args = parser.parse_args()
    trees = {"this": ROOT, "baseline": Path(args.baseline).resolve()}
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {t: {} for t in trees}
    for source in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(source / "ledgerflow")],
                       env=_env(source), check=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        for name in trees:
            (Path(tmp) / name).mkdir()
            (Path(tmp) / name / "storage_flow.py").write_text(FLOW)
            (Path(tmp) / name / "read.py").write_text(READ)
        for _ in range(args.repeat):
            for name, source in trees.items():
                for what, value in round_of(source, Path(tmp) / name, args.n).items():
                    samples[name].setdefault(what, []).append(value)
    print(f"foreach {args.n}, medians of {args.repeat} interleaved rounds")
    print(f"{'':22} {'this CPU':>9} {'base CPU':>9} {'ratio':>6} {'this wall':>10} "
          f"{'base wall':>10} {'ratio':>6}")  # fmt: skip
    for what in samples["this"]:
        this = [statistics.median(x[i] for x in samples["this"][what]) for i in (0, 1)]
        base = [statistics.median(x[i] for x in samples["baseline"][what]) for i in (0, 1)]
        print(f"{what:22} {this[0]:9.3f} {base[0]:9.3f} {this[0] / base[0]:6.2f} "
              f"{this[1]:10.3f} {base[1]:10.3f} {this[1] / base[1]:6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
