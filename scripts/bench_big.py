"""Big values: 200 MB random + 200 MB zeros float64 through 3 steps (bench.py's "big" flow),
ledgerflow against a baseline checkout and Metaflow, in interleaved rounds of this invocation.

    .venv/bin/python scripts/bench_big.py --repeat 5 --metaflow /tmp/mfvenv/bin/python \\
        --baseline /tmp/ledgerflow-main     # e.g. `git archive main | tar -x -C DIR`

Per engine, medians of --repeat rounds: whole-process wall, CPU of the run's own process
(the runtime) and of its descendants (fork server and tasks; Metaflow's task subprocesses),
the runtime's peak RSS and the largest descendant's. Then, for each ledgerflow, the time to
load both arrays verified (the Client's path, `Ledger.load`) in a fresh process, after a run.
Machine load is printed: the figures are same-run ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _MEASURED, write_flow  # noqa: E402

HERE = str(Path(__file__).resolve().parent.parent)

# Loads the start step's two arrays from a run's ledger, as a reader does, and prints the
# seconds (wall and CPU) the two verified loads took.
_LOAD = """
import sys, time
from ledgerflow.ledger import Ledger
ledger = Ledger.open(sys.argv[1], reader=True)
shas = [r[0] for r in ledger.execute(
    "select a.sha from artifact a join task t on t.id = a.task_id where t.step = 'start' "
    "and a.name in ('noise', 'zeros') order by a.name")]
assert len(shas) == 2, shas
c, t = time.process_time(), time.perf_counter()
values = [ledger.load(sha) for sha in shas]
print("LOADED", time.perf_counter() - t, time.process_time() - c, sum(v.nbytes for v in values))
"""


@dataclass
class Sample:
    seconds: float
    runtime_cpu: float
    runtime_mb: float
    tasks_cpu: float
    tasks_mb: float


def run(python: str, flow: Path, engine: str, workdir: Path, source: str | None) -> Sample:
    db = workdir / "big.db"
    for leftover in workdir.glob("big.db*"):
        leftover.unlink()
    env = dict(os.environ, USERNAME="bench", METAFLOW_USER="bench")
    env.pop("LEDGERFLOW_DB", None)
    cmd = [python, "-c", _MEASURED, str(flow)]
    if engine == "ledgerflow":
        cmd += ["--db", str(db), "--quiet", "run"]
        env["PYTHONPATH"] = source or HERE
    else:
        cmd += ["--quiet", "--no-pylint", "run"]
        subprocess.run(["rm", "-rf", str(workdir / ".metaflow")], check=True)
        if source:
            env["PYTHONPATH"] = source  # numpy, when Metaflow's venv lacks it
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{proc.stderr[-2000:]}")
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MEASURED"))
    rt_kb, rt_cpu, kids_kb, kids_cpu, *_ = (float(x) for x in line.split()[1:])
    return Sample(seconds, rt_cpu, rt_kb / 1024, kids_cpu, kids_kb / 1024)


def load(workdir: Path, source: str) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=source)
    proc = subprocess.run([sys.executable, "-c", _LOAD, str(workdir / "big.db")], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    line = next(x for x in proc.stdout.splitlines() if x.startswith("LOADED"))
    wall, cpu, nbytes = line.split()[1:]
    assert int(nbytes) == 400_000_000
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--metaflow", metavar="PYTHON", default=None)
    parser.add_argument("--baseline", metavar="DIR", default=None,
                        help="another ledgerflow checkout, run in the same rounds")  # fmt: skip
    args = parser.parse_args()
    engines: dict[str, tuple[str, str, str | None]] = {
        "ledgerflow": (sys.executable, "ledgerflow", HERE)
    }
    if args.baseline:
        engines["baseline"] = (sys.executable, "ledgerflow", args.baseline)
    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        if args.metaflow:
            engines["metaflow"] = (args.metaflow, "metaflow", numpy_for(args.metaflow, tmp))
        rounds(args, engines, Path(tmp))


def numpy_for(python: str, folder: str) -> str | None:
    """A folder holding only this Python's numpy, for a venv without it (None if it has it)."""
    if subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode == 0:
        return None
    import numpy

    where = Path(folder) / "numpy-only"
    where.mkdir()
    site = Path(numpy.__file__).parent.parent
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists():
            (where / name).symlink_to(site / name)
    return str(where)


def rounds(args: argparse.Namespace, engines: dict[str, tuple[str, str, str | None]],
           folder: Path) -> None:  # fmt: skip
    samples: dict[str, list[Sample]] = {name: [] for name in engines}
    loads: dict[str, list[tuple[float, float]]] = {n: [] for n in engines if n != "metaflow"}
    flows = {e: write_flow(folder, "big", e) for e in ("ledgerflow", "metaflow")}
    for _ in range(args.repeat):
        for name, (python, engine, source) in engines.items():
            work = folder / name
            work.mkdir(exist_ok=True)
            samples[name].append(run(python, flows[engine], engine, work, source))
            if name in loads and source:
                loads[name].append(load(work, source))
    print(f"200 MB random + 200 MB zeros, 3 steps: medians of {args.repeat} interleaved rounds "
          f"(load average {os.getloadavg()[0]:.2f})")  # fmt: skip
    med = {name: {f: statistics.median(getattr(s, f) for s in ss)
                  for f in Sample.__dataclass_fields__} for name, ss in samples.items()}  # fmt: skip
    for name, m in med.items():
        print(f"  {name:11} wall {m['seconds']:6.2f}s  CPU {m['runtime_cpu'] + m['tasks_cpu']:6.2f}s"
              f" (runtime {m['runtime_cpu']:5.2f}, tasks {m['tasks_cpu']:5.2f})  peak MB: runtime "
              f"{m['runtime_mb']:6.0f}, largest task {m['tasks_mb']:6.0f}")  # fmt: skip
    if "metaflow" in med:
        for name in med:
            if name != "metaflow":
                print(
                    f"  metaflow / {name}: wall {med['metaflow']['seconds'] / med[name]['seconds']:.2f}x"
                )
    if "baseline" in med:
        b, a = med["baseline"], med["ledgerflow"]
        print(
            f"  ledgerflow / baseline: wall {a['seconds'] / b['seconds']:.2f}x, CPU "
            f"{(a['runtime_cpu'] + a['tasks_cpu']) / (b['runtime_cpu'] + b['tasks_cpu']):.2f}x"
        )
    for name, got in loads.items():
        wall = statistics.median(w for w, _ in got)
        cpu = statistics.median(c for _, c in got)
        print(f"  verified load of both arrays (400 MB) in a fresh process, {name}: wall "
              f"{wall:.3f}s, CPU {cpu:.3f}s")  # fmt: skip


if __name__ == "__main__":
    main()
