"""Benchmarks: ledgerflow against Metaflow's local mode, whole-process, medians.

    .venv/bin/python scripts/bench.py --quick                  # about a minute, ledgerflow only
    .venv/bin/python scripts/bench.py --metaflow /tmp/mfvenv/bin/python --repeat 3
    .venv/bin/python scripts/bench.py --dask                   # the Dask section alone
    .venv/bin/python scripts/bench.py --scale                  # foreach 1,000 against 10,000
    PYTHONPATH=. .venv/bin/python scripts/bench.py --taskpath --repeat 5 \
        --baseline DIR --floor ../shared/perf-floor/proto.py   # CPU per task, same rounds

For the Metaflow side, make a throwaway venv (never a ledgerflow dependency):

    python3 -m venv /tmp/mfvenv && /tmp/mfvenv/bin/pip install metaflow==2.19.39

Each workload is a flow written once and run with `from ledgerflow import ...` or
`from metaflow import ...`. Times are whole processes (interpreter start-up included), the
median of --repeat runs, measured in this invocation; ratios compare medians of the same run.
Peak memory is the process's max RSS; size is what the run left on disk (the ledger file, or
Metaflow's .metaflow folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEDGERFLOW_PYTHON = sys.executable

FLOWS = {
    "linear": """
        class LinearBench(FlowSpec):
            @step
            def start(self):
                self.x = 1
                self.next(self.a)
            @step
            def a(self):
                self.x += 1
                self.next(self.b)
            @step
            def b(self):
                self.x += 1
                self.next(self.end)
            @step
            def end(self):
                pass
    """,
    "foreach": """
        class ForeachBench(FlowSpec):
            n = Parameter("n", default=100)
            @step
            def start(self):
                self.items = list(range(int(self.n)))
                self.next(self.work, foreach="items")
            @step
            def work(self):
                self.out = self.input + 1
                self.next(self.join)
            @step
            def join(self, inputs):
                self.total = sum(i.out for i in inputs)
                self.next(self.end)
            @step
            def end(self):
                pass
    """,
    "big": """
        import numpy as np
        class BigBench(FlowSpec):
            @step
            def start(self):
                rng = np.random.default_rng(0)
                self.noise = rng.random(25_000_000)          # 200 MB of float64
                self.zeros = np.zeros(25_000_000)            # 200 MB of zeros
                self.next(self.middle)
            @step
            def middle(self):
                self.mean = float(self.noise.mean())
                self.next(self.end)
            @step
            def end(self):
                self.check = float(self.zeros.sum()) + self.mean
    """,
    "dedup": """
        class DedupBench(FlowSpec):
            @step
            def start(self):
                self.items = list(range(50))
                self.next(self.work, foreach="items")
            @step
            def work(self):
                self.same = bytes(10 * 1024 * 1024)          # the same 10 MB in every task
                self.next(self.join)
            @step
            def join(self, inputs):
                self.n = sum(1 for _ in inputs)  # Metaflow's inputs has no len()
                self.next(self.end)
            @step
            def end(self):
                pass
    """,
    "sleepy": """
        import time
        class SleepyBench(FlowSpec):
            @step
            def start(self):
                self.items = list(range(16))
                self.next(self.nap, foreach="items")
            @step
            def nap(self):
                time.sleep(0.5)
                self.next(self.join)
            @step
            def join(self, inputs):
                self.next(self.end)
            @step
            def end(self):
                pass
    """,
    "cpu": """
        class CpuBench(FlowSpec):
            @step
            def start(self):
                self.items = list(range(4))
                self.next(self.burn, foreach="items")
            @step
            def burn(self):
                total = 0
                for i in range(6_000_000):
                    total += i * i % 7
                self.total = total
                self.next(self.join)
            @step
            def join(self, inputs):
                self.next(self.end)
            @step
            def end(self):
                pass
    """,
}


# --dask: the scale-out workloads (ledgerflow only; docs/performance.md, "On Dask").
FLOWS["cpu64"] = """
    class CpuBench(FlowSpec):
        n = Parameter("n", default=64)
        @step
        def start(self):
            self.items = list(range(int(self.n)))
            self.next(self.work, foreach="items")
        @step
        def work(self):
            x = 0
            for i in range(4_800_000):  # about 0.2 s of pure Python here
                x += i * i
            self.out = x
            self.next(self.join)
        @step
        def join(self, inputs):
            self.total = sum(i.out for i in inputs)
            self.next(self.end)
        @step
        def end(self):
            pass
"""
FLOWS["shared10mb"] = """
    import os
    class SharedBench(FlowSpec):
        @step
        def start(self):
            self.blob = os.urandom(10_000_000)  # incompressible: 10 MB on the wire
            self.items = list(range(50))
            self.next(self.work, foreach="items")
        @step
        def work(self):
            self.size = len(self.blob) + self.input
            self.next(self.join)
        @step
        def join(self, inputs):
            self.sizes = [i.size for i in inputs]
            self.next(self.end)
        @step
        def end(self):
            pass
"""


def write_flow(folder: Path, name: str, engine: str) -> Path:
    header = f"from {engine} import FlowSpec, Parameter, step\n"
    body = textwrap.dedent(FLOWS[name])
    cls = body.split("class ", 1)[1].split("(", 1)[0]
    path = folder / f"{name}_{engine}.py"
    path.write_text(header + body + f"\nif __name__ == '__main__':\n    {cls}()\n")
    return path


@dataclass
class Sample:
    seconds: float
    peak_mb: float
    disk_mb: float


def disk_mb(folder: Path) -> float:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            if f.endswith((".db", ".db-wal")) or ".metaflow" in root:
                total += os.path.getsize(os.path.join(root, f))
    return total / 1e6


def run_once(python: str, flow: Path, engine: str, args: list[str], workdir: Path) -> Sample:
    env = dict(os.environ, USERNAME="bench", METAFLOW_USER="bench")
    env.pop("LEDGERFLOW_DB", None)
    cmd = ["/usr/bin/time", "-f", "%M", python, str(flow)]
    if engine == "ledgerflow":
        cmd += ["--db", str(workdir / "ledgerflow.db"), "--quiet"]
    else:
        cmd += ["--quiet", "--no-pylint"]
    cmd += ["run", *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} {flow.name} failed:\n{proc.stderr[-2000:]}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    return Sample(seconds, peak_kb / 1024, disk_mb(workdir))


def bench(python: str, engine: str, name: str, args: list[str], repeat: int,
          fresh: bool = True) -> list[Sample]:  # fmt: skip
    samples = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-") as tmp:
        folder = Path(tmp)
        flow = write_flow(folder, name, engine)
        for _ in range(repeat if fresh else repeat + 1):
            work = folder / "work"
            if fresh and work.exists():
                shutil.rmtree(work)
            work.mkdir(exist_ok=True)
            samples.append(run_once(python, flow, engine, args, work))
    return samples if fresh else samples[1:]  # the first run created the ledger


def median(samples: list[Sample], attr: str) -> float:
    return statistics.median(getattr(s, attr) for s in samples)


def python_startup(python: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def import_time(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([LEDGERFLOW_PYTHON, "-c", "import ledgerflow"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# Times, inside one `python linear.py run` process, the imports a run needs and the run
# itself (graph, ledger, 4 tasks, commits): the split of a linear run's cost.
_SPLIT = """
import runpy, sys, time
t0 = time.perf_counter()
import ledgerflow, ledgerflow.cli.flow_cli, ledgerflow.task, ledgerflow.runtime
import ledgerflow.executors, ledgerflow.lint, ledgerflow.graph, ledgerflow.ledger
t1 = time.perf_counter()
sys.argv = [sys.argv[1], "--db", sys.argv[2], "--quiet", "run"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
print(t1 - t0, time.perf_counter() - t1, file=sys.stderr)
"""


def linear_split(repeat: int) -> tuple[float, float]:
    """Medians of (imports, run) seconds of a linear run on an existing ledger."""
    imports, runs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        flow = write_flow(Path(tmp), "linear", "ledgerflow")
        db = str(Path(tmp) / "ledgerflow.db")
        for i in range(repeat + 1):
            proc = subprocess.run([LEDGERFLOW_PYTHON, "-c", _SPLIT, str(flow), db],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            if i:  # the first run created the ledger
                a, b = map(float, proc.stderr.split()[-2:])
                imports.append(a)
                runs.append(b)
    return statistics.median(imports), statistics.median(runs)


_READ = """
import sys
from {engine} import Run, namespace
namespace(None)
assert Run("LinearBench/" + sys.argv[1])["end"].task.data.x == 3
"""


def read_in_fresh_process(python: str, engine: str, repeat: int) -> float:
    """Median seconds for a new process to read one artifact of one task (import included)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-read-{engine}-") as tmp:
        work = Path(tmp)
        flow = write_flow(work, "linear", engine)
        env = dict(os.environ, USERNAME="bench", METAFLOW_USER="bench",
                   LEDGERFLOW_DB=str(work / "ledgerflow.db"))  # fmt: skip
        cmd = [python, str(flow)] + (["--no-pylint"] if engine == "metaflow" else [])
        subprocess.run(cmd + ["--quiet", "run", "--run-id-file", str(work / "id")], cwd=work,
                       env=env, check=True, capture_output=True)  # fmt: skip
        run_id = (work / "id").read_text().strip()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([python, "-c", _READ.format(engine=engine), run_id], cwd=work,
                           env=env, check=True)  # fmt: skip
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def progress_overhead(repeat: int) -> None:
    """foreach 1000 + join under each console mode, interleaved, medians: --quiet (prints
    nothing), the default to a pipe (first lines, then summaries), the default on a
    terminal (a pty: the live line), --verbose (every line, as before progress.py)."""
    modes = {"--quiet": (["--quiet"], False), "default, pipe": ([], False),
             "default, terminal": ([], True), "--verbose": (["--verbose"], False)}  # fmt: skip
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    env = dict(os.environ, USERNAME="bench", METAFLOW_USER="bench")
    env.pop("LEDGERFLOW_DB", None)
    with tempfile.TemporaryDirectory(prefix="bench-progress-") as tmp:
        folder = Path(tmp)
        flow = write_flow(folder, "foreach", "ledgerflow")
        for _ in range(repeat):
            for mode, (top, tty) in modes.items():
                db = folder / "ledgerflow.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                cmd = [LEDGERFLOW_PYTHON, str(flow), "--db", str(db), *top, "run", "--n", "1000",
                       "--max-num-splits", "1000"]  # fmt: skip
                wall, cpu_s = _timed_run(cmd, folder, env, tty)
                times[mode].append(wall)
                cpu[mode].append(cpu_s)
    # CPU seconds (the run's user + system time) hold steadier than wall time when other
    # work shares the machine; both are shown.
    base = statistics.median(times["--quiet"])
    base_cpu = statistics.median(cpu["--quiet"])
    for mode, samples in times.items():
        med, med_cpu = statistics.median(samples), statistics.median(cpu[mode])
        print(f"  foreach 1000 + join, {mode:18} {med:6.3f}s wall "
              f"({(med / base - 1) * 100:+5.1f}%), {med_cpu:6.3f}s CPU "
              f"({(med_cpu / base_cpu - 1) * 100:+5.1f}%) vs --quiet; medians of {repeat}",
              flush=True)  # fmt: skip
    # Whole runs on a busy machine vary by a few percent; the renderer's own cost, timed
    # alone for the same 1,000-task foreach, says how much of that is the display's.
    for label, kwargs in (("pipe", {"tty": False}), ("terminal", {"tty": True}),
                          ("--verbose", {"tty": False, "verbose": True})):  # fmt: skip
        cost = statistics.median(_renderer_seconds(**kwargs) for _ in range(repeat))
        print(
            f"  the renderer alone, {label:10} {cost * 1000:6.2f} ms for 1,000 tasks "
            f"({cost / base * 100:.2f}% of the --quiet run)",
            flush=True,
        )


def _renderer_seconds(**kwargs: bool) -> float:
    """Seconds the events of a foreach 1000 + join take in progress.Progress."""
    import io

    from ledgerflow.progress import Progress

    out = io.StringIO()
    started = time.perf_counter()
    progress = Progress(out, **kwargs)
    progress.say("Workflow starting (run-id 1):")
    progress.task_started("start", "[1/start/1]")
    progress.foreach_yields("[1/start/1]", "start", "work", 1000)
    progress.task_ended("start", "[1/start/1]", "succeeded", "Task finished successfully.")
    for i in range(1000):
        progress.task_started("work", f"[1/work/{i + 2}]")
    for i in range(1000):
        progress.task_ended("work", f"[1/work/{i + 2}]", "succeeded",
                            "Task finished successfully.")  # fmt: skip
    for step, task in (("join", 1002), ("end", 1003)):
        progress.task_started(step, f"[1/{step}/{task}]")
        progress.task_ended(step, f"[1/{step}/{task}]", "succeeded", "Task finished successfully.")
    progress.run_done()
    progress.say("Done!")
    return time.perf_counter() - started


def _timed_run(cmd: list[str], cwd: Path, env: dict[str, str], tty: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run, its stdout read from a pipe or from a pty."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not tty:
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        seconds = time.perf_counter() - started
    else:
        import pty
        import threading

        master, slave = pty.openpty()

        def drain() -> None:
            try:
                while os.read(master, 65536):
                    pass
            except OSError:
                pass

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=slave, stderr=subprocess.PIPE,
                              check=False)  # fmt: skip
        seconds = time.perf_counter() - started
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]!r}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu


WORKLOADS = [
    # (label, flow, ledgerflow args, metaflow args, quick?)
    ("linear, 4 tasks", "linear", [], [], True),
    ("one more linear run (existing ledger)", "linear", [], [], True),
    ("foreach 100 + join", "foreach", ["--n", "100"], ["--n", "100"], True),
    ("foreach 1000 + join", "foreach", ["--n", "1000", "--max-num-splits", "1000"],
     ["--n", "1000", "--max-num-splits", "1000"], True),
    ("foreach 1000 + join, threads", "foreach",
     ["--n", "1000", "--max-num-splits", "1000", "--executor", "thread"], [], True),
    ("200 MB random + 200 MB zeros, 3 steps", "big", [], [], False),
    ("foreach 50 x same 10 MB", "dedup", [], [], False),
    ("foreach 16 x sleep 0.5 s", "sleepy", [], [], True),
    ("4 CPU-bound tasks (one process each)", "cpu", [], [], False),
    ("4 CPU-bound tasks, threads", "cpu", ["--executor", "thread"], [], False),
    ("4 CPU-bound tasks, sequential", "cpu", ["--executor", "sequential"], [], False),
]  # fmt: skip


# Runs a flow file as `python FLOW ...` does, then reports what the run's own process used
# (RUSAGE_SELF: the runtime alone) and what its descendants used (the fork server and the
# tasks; their peak is the largest one's, a join of 10,000 inputs here).
_MEASURED = """
import atexit, resource, runpy, sys
def report():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print("MEASURED", me.ru_maxrss, me.ru_utime + me.ru_stime, kids.ru_maxrss,
          kids.ru_utime + kids.ru_stime, me.ru_minflt, kids.ru_minflt, file=sys.stderr)
atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@dataclass
class ScaleSample:
    seconds: float
    runtime_mb: float
    runtime_cpu: float
    tasks_mb: float
    tasks_cpu: float
    ledger_mb: float
    runtime_faults: float = 0.0
    tasks_faults: float = 0.0
    # The fork server's own share and its tasks' (the default executor only; -1: unknown)
    server_cpu: float = -1.0
    server_faults: float = -1.0
    task_cpu: float = -1.0
    task_faults: float = -1.0


def scale_run(flow: Path, n: int, executor: str, workdir: Path,
              source: str | None = None) -> ScaleSample:  # fmt: skip
    """One measured run; `source`: a ledgerflow checkout to run instead of this one (its
    folder goes first on PYTHONPATH), for A/B figures in the same invocation."""
    db = workdir / f"scale-{n}-{executor}.db"
    for leftover in workdir.glob(db.name + "*"):
        leftover.unlink()
    cmd = [LEDGERFLOW_PYTHON, "-c", _MEASURED, str(flow), "--db", str(db), "--quiet", "run",
           "--n", str(n), "--max-num-splits", str(n), "--executor", executor]  # fmt: skip
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source
    split = workdir / "forkserver-rusage.json"
    split.unlink(missing_ok=True)
    env["LEDGERFLOW_FORKSERVER_RUSAGE"] = str(split)  # executors/forkserver.py writes it
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"foreach {n} failed:\n{proc.stderr[-2000:]}")
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MEASURED"))
    rt_kb, rt_cpu, kids_kb, kids_cpu, rt_faults, kids_faults = (
        float(x) for x in line.split()[1:])  # fmt: skip
    sample = ScaleSample(seconds, rt_kb / 1024, rt_cpu, kids_kb / 1024, kids_cpu,
                         db.stat().st_size / 1e6, rt_faults, kids_faults)  # fmt: skip
    if split.exists():  # an older checkout (a baseline) does not write it
        shares = json.loads(split.read_text())
        sample.server_cpu, sample.server_faults = shares["server_cpu"], shares["server_faults"]
        sample.task_cpu, sample.task_faults = shares["tasks_cpu"], shares["tasks_faults"]
    return sample


# The perf-floor prototype's options that each helped ("BEST" in its README and bench.py).
FLOOR_OPTIONS = "rawfork,pidfd,stdio=pre,pdeath=fast,lean,freeze,gcoff,rawspec"


class FloorProgram:
    """The standalone prototype of one forked process per task (../shared/perf-floor/
    proto.py): a task's whole job with the same isolation and none of ledgerflow's code on
    its path. Run in the same rounds as ours, it says how fast the machine is at this hour,
    so CPU per task can be quoted against it as well as in milliseconds."""

    def __init__(self, proto: Path, folder: Path, flow: Path):
        # proto.py imports the modules listed in ../server_mods.txt (what our fork server
        # holds, so the fork copies as much): it gets its own copy, beside that list.
        home = folder / "floor"
        (home / "proto").mkdir(parents=True)
        self.proto = home / "proto" / "proto.py"
        shutil.copyfile(proto, self.proto)
        listing = subprocess.run(
            [LEDGERFLOW_PYTHON, "-c", _SERVER_MODULES, str(flow)],
            capture_output=True, text=True, check=True, cwd=folder,
        )  # fmt: skip
        (home / "server_mods.txt").write_text(listing.stdout)
        self.db = home / "proto.db"

    def run(self, n: int) -> tuple[float, float]:
        """(CPU ms a task, all processes; wall seconds) of one foreach of n."""
        env = dict(os.environ, PROTO_DB=str(self.db))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        proc = subprocess.run([LEDGERFLOW_PYTHON, str(self.proto), "--n", str(n), "--opt",
                               FLOOR_OPTIONS], env=env, capture_output=True, text=True)  # fmt: skip
        for leftover in self.db.parent.glob(self.db.name + "*"):
            leftover.unlink()
        if proc.returncode != 0:
            raise RuntimeError(f"the floor program failed:\n{proc.stderr[-2000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        return result["total_ms"], result["wall_s"]


# The modules our fork server holds: it is forked from the run's process (the flow's module,
# the command line, the runtime), then prepares for its tasks.
_SERVER_MODULES = """
import runpy, sys
runpy.run_path(sys.argv[1], run_name="bench_flow")
import ledgerflow.cli.flow_cli, ledgerflow.cli.run_flow, ledgerflow.executors.processes
from ledgerflow.executors import forkserver
forkserver._prepare_tasks()
print("\\n".join(sorted(sys.modules)))
"""


def taskpath_section(repeat: int, n: int = 1000, baseline: str | None = None,
                     floor: str | None = None) -> None:  # fmt: skip
    """foreach N + join with the default executor and with threads, interleaved rounds in
    this invocation: wall, CPU per task of all processes (the run's own, plus the fork
    server's and every task's, which rusage counts once they are reaped), minor page faults
    per task, and the default's wall against threads'. Medians of `repeat` rounds. With
    `baseline` (another checkout, e.g. `git archive main | tar -x -C DIR`), its default
    executor runs in the same rounds. With `floor` (perf-floor's proto.py), the floor
    program runs in them too."""
    rows: dict[str, list[ScaleSample]] = {"process": [], "thread": []}
    floors: list[tuple[float, float]] = []
    if baseline:
        rows["baseline"] = []
        rows["baseline thread"] = []
    with tempfile.TemporaryDirectory(prefix="bench-taskpath-") as tmp:
        folder = Path(tmp)
        flow = write_flow(folder, "foreach", "ledgerflow")
        program = FloorProgram(Path(floor), folder, flow) if floor else None
        for _ in range(repeat):
            if program is not None:
                floors.append(program.run(n))
            for executor in rows:
                if executor.startswith("baseline"):
                    kind = "thread" if executor.endswith("thread") else "process"
                    rows[executor].append(scale_run(flow, n, kind, folder, baseline))
                else:
                    rows[executor].append(scale_run(flow, n, executor, folder))
    print(f"foreach {n:,} + join, medians of {repeat} interleaved rounds "
          f"(load average {os.getloadavg()[0]:.2f}):")  # fmt: skip
    walls = {}
    for executor, samples in rows.items():
        walls[executor] = wall = statistics.median(s.seconds for s in samples)
        cpu = statistics.median(s.runtime_cpu + s.tasks_cpu for s in samples)
        rt = statistics.median(s.runtime_cpu for s in samples)
        kids = statistics.median(s.tasks_cpu for s in samples)
        faults = statistics.median(s.tasks_faults for s in samples)
        print(f"  {executor:15} wall {wall:6.2f}s  CPU {cpu / n * 1000:5.2f} ms/task (runtime "
              f"{rt / n * 1000:5.2f}, server + tasks {kids / n * 1000:5.2f})  faults of "
              f"server + tasks {faults / n:6.0f}/task", flush=True)  # fmt: skip
        if all(s.server_cpu >= 0 for s in samples):
            split = {k: statistics.median(getattr(s, k) for s in samples) / n
                     for k in ("server_cpu", "task_cpu", "server_faults", "task_faults")}  # fmt: skip
            print(f"  {'':15} split: server {split['server_cpu'] * 1000:5.2f} ms + tasks "
                  f"{split['task_cpu'] * 1000:5.2f} ms/task; faults server "
                  f"{split['server_faults']:4.0f} + task {split['task_faults']:4.0f}/task",
                  flush=True)  # fmt: skip
    paired = statistics.median(
        p.seconds / t.seconds for p, t in zip(rows["process"], rows["thread"])
    )
    print(f"  wall, process / thread: {walls['process'] / walls['thread']:.2f}x (median of "
          f"the rounds' own ratios {paired:.2f}x)", flush=True)  # fmt: skip
    if floors:
        floor_cpu = statistics.median(cpu for cpu, _ in floors)
        ours = statistics.median(s.runtime_cpu + s.tasks_cpu for s in rows["process"]) / n * 1000
        print(f"  floor program  wall {statistics.median(w for _, w in floors):6.2f}s  CPU "
              f"{floor_cpu:5.2f} ms/task; process / floor: CPU {ours / floor_cpu:.2f}x",
              flush=True)  # fmt: skip
    if baseline:
        cpu = {k: statistics.median(s.runtime_cpu + s.tasks_cpu for s in v)
               for k, v in rows.items()}  # fmt: skip
        print(f"  CPU, process / baseline's: {cpu['process'] / cpu['baseline']:.2f}x; wall "
              f"{walls['process'] / walls['baseline']:.2f}x; thread / baseline's thread: CPU "
              f"{cpu['thread'] / cpu['baseline thread']:.2f}x, wall "
              f"{walls['thread'] / walls['baseline thread']:.2f}x", flush=True)  # fmt: skip


def scale_section(repeat: int) -> None:
    """foreach 1,000 and 10,000 + join in the same invocation: whole-process time, time and
    CPU per task, the ratio of 10,000's cost per task to 1,000's, the runtime's own peak
    memory and the largest task process's, and the ledger's size."""
    print(f"{'foreach N + join':28} {'wall s':>8} {'ms/task':>8} {'cpu ms/task':>12} "
          f"{'runtime MB':>11} {'largest task MB':>16} {'ledger MB':>10}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        flow = write_flow(folder, "foreach", "ledgerflow")
        for executor in ("process", "thread"):
            per_task = {}
            for n in (1000, 10000):
                samples = [scale_run(flow, n, executor, folder) for _ in range(repeat)]
                wall = statistics.median(s.seconds for s in samples)
                cpu = statistics.median(s.runtime_cpu + s.tasks_cpu for s in samples)
                per_task[n] = (wall / n, cpu / n)
                print(
                    f"{f'{n:,}, {executor}':28} {wall:8.2f} {wall / n * 1000:8.2f} "
                    f"{cpu / n * 1000:12.2f} "
                    f"{statistics.median(s.runtime_mb for s in samples):11.1f} "
                    f"{statistics.median(s.tasks_mb for s in samples):16.1f} "
                    f"{statistics.median(s.ledger_mb for s in samples):10.1f}",
                    flush=True,
                )
            wall_ratio = per_task[10000][0] / per_task[1000][0]
            cpu_ratio = per_task[10000][1] / per_task[1000][1]
            print(
                f"  {executor}: cost per task at 10,000 / at 1,000: wall {wall_ratio:.2f}x, "
                f"CPU {cpu_ratio:.2f}x",
                flush=True,
            )


def _blob_arrivals(dask_worker: Any) -> list[tuple[str, str, int]]:
    """(key, 'scatter' or 'peer', bytes) for every ledgerflow blob that reached this worker:
    from the driver's scatter, or fetched from another worker (bytes are known for those)."""
    arrivals = [
        (entry[0], "scatter", 0)
        for entry in dask_worker.state.log
        if entry[1] == "receive-from-scatter" and entry[0].startswith("ledgerflow-blob-")
    ]
    for transfer in dask_worker.transfer_incoming_log:
        arrivals += [(key, "peer", int(size or 0)) for key, size in transfer["keys"].items()
                     if key.startswith("ledgerflow-blob-")]  # fmt: skip
    return arrivals


def dask_section(repeat: int) -> None:
    """CPU-bound foreach on a 2-worker LocalCluster against the default executor and
    sequential; per-task overhead on Dask; bytes that reach the workers for 50 tasks reading
    one 10 MB artifact."""
    try:
        import distributed
    except ImportError:
        print("dask: skipped (pip install 'ledgerflow[dask]')")
        return
    from ledgerflow.executors.dask import local_cluster

    cluster = local_cluster(n_workers=2, silence_logs=40)
    client = distributed.Client(cluster)
    on_dask = ["--executor", "dask", "--dask-scheduler", cluster.scheduler_address]
    try:
        print(
            "on Dask (a LocalCluster of 2 single-threaded worker processes, started once; "
            f"medians of {repeat}):"
        )
        for label, args in (("64 CPU-bound tasks of ~0.2 s, sequential", ["--executor",
                                                                        "sequential"]),
                            ("64 CPU-bound tasks of ~0.2 s, process (default)", []),
                            ("64 CPU-bound tasks of ~0.2 s, dask", on_dask)):  # fmt: skip
            samples = bench(LEDGERFLOW_PYTHON, "ledgerflow", "cpu64", args, repeat)
            print(f"  {label:52} {median(samples, 'seconds'):7.2f}s", flush=True)
        per_task = {}
        for label, args in (("process (default)", []), ("dask", on_dask)):
            small = median(bench(LEDGERFLOW_PYTHON, "ledgerflow", "foreach",
                                 ["--n", "10", *args], repeat), "seconds")  # fmt: skip
            big = median(bench(LEDGERFLOW_PYTHON, "ledgerflow", "foreach",
                               ["--n", "1000", "--max-num-splits", "1000", "--max-workers", "64", *args], repeat),
                         "seconds")  # fmt: skip
            per_task[label] = (big - small) / 990
            print(f"  foreach of 1,000 trivial tasks, {label:19} {big:7.2f}s, "
                  f"{per_task[label] * 1000:.1f} ms per task (against a foreach of 10)",
                  flush=True)  # fmt: skip
    finally:
        client.close()
        cluster.close()
    # A fresh cluster: what reaches its workers is this one run's.
    cluster = local_cluster(n_workers=2, silence_logs=40)
    client = distributed.Client(cluster)
    try:
        on_dask = ["--executor", "dask", "--dask-scheduler", cluster.scheduler_address]
        bench(LEDGERFLOW_PYTHON, "ledgerflow", "shared10mb", on_dask, 1)
        per_worker = client.run(_blob_arrivals)
        for address, arrivals in sorted(per_worker.items()):
            keys = [key for key, _, _ in arrivals]
            most = max((keys.count(k) for k in keys), default=0)
            peer = sum(size for _, how, size in arrivals if how == "peer")
            scattered = sum(1 for _, how, _ in arrivals if how == "scatter")
            print(
                f"  50 tasks reading one 10 MB artifact, worker {address.rsplit(':', 1)[-1]}: "
                f"each blob arrived at most {most}x; {scattered} scattered to it by the "
                f"driver, {peer / 1e6:.1f} MB fetched from the other worker",
                flush=True,
            )
    finally:
        client.close()
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--metaflow",
        metavar="PYTHON",
        default=os.environ.get("METAFLOW_PYTHON"),
        help="python of a venv with metaflow installed (optional)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a one-minute subset")
    parser.add_argument(
        "--dask",
        action="store_true",
        help="only the Dask section (needs pip install 'ledgerflow[dask]')",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="only foreach 1,000 against 10,000 (time, memory per task)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated: run workloads whose label contains one of these",
    )
    parser.add_argument(
        "--taskpath",
        action="store_true",
        help="only foreach 1,000 + join, default executor against threads (CPU per task)",
    )
    parser.add_argument("--n", type=int, default=1000, help="--taskpath: the foreach's width")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        default=None,
        help="--taskpath: a ledgerflow checkout to run in the same rounds, for before/after",
    )
    parser.add_argument(
        "--floor",
        metavar="PROTO",
        default=None,
        help="--taskpath: perf-floor's proto.py, run in the same rounds (how fast the "
        "machine is at this hour)",
    )
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    # As users run: compiled modules cached in __pycache__ (pip compiles Metaflow's at install;
    # an editable ledgerflow, and a baseline checkout, are compiled here once, so no run pays
    # for compiling).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for checkout in (Path(__file__).resolve().parent.parent, args.baseline):
        if checkout is not None:
            subprocess.run([LEDGERFLOW_PYTHON, "-m", "compileall", "-q",
                            str(Path(checkout) / "ledgerflow")], check=True)  # fmt: skip
    if args.taskpath:
        taskpath_section(repeat, args.n, args.baseline, args.floor)
        return
    if args.dask:
        dask_section(repeat)
        return
    if args.scale:
        scale_section(repeat)
        return
    startup = python_startup(LEDGERFLOW_PYTHON, 5)
    print(
        f"python start-up {startup * 1000:.0f} ms; import ledgerflow "
        f"{(import_time(5) - startup) * 1000:.0f} ms (medians of 5)"
    )
    imports, run = linear_split(5)
    print(
        f"a linear run, inside its process: imports {imports * 1000:.0f} ms, the run "
        f"itself {run * 1000:.1f} ms (medians of 5)"
    )
    print(f"{'workload':42} {'ledgerflow':>11} {'peak MB':>8} {'disk MB':>8}"
          + (f" {'metaflow':>10} {'peak MB':>8} {'disk MB':>8} {'ratio':>7}" if args.metaflow
             else ""))  # fmt: skip
    wanted = [w.strip() for w in (args.only or "").split(",") if w.strip()]
    for label, name, lf_args, mf_args, quick in WORKLOADS:
        if (args.quick and not quick) or (wanted and not any(w in label for w in wanted)):
            continue
        if name == "big" and subprocess.run([LEDGERFLOW_PYTHON, "-c", "import numpy"],
                                            capture_output=True).returncode:  # fmt: skip
            print(f"{label:42} skipped (numpy is not installed)")
            continue
        fresh = "existing" not in label  # else every run adds to the same ledger/datastore
        lf = bench(LEDGERFLOW_PYTHON, "ledgerflow", name, lf_args, repeat, fresh)
        line = (f"{label:42} {median(lf, 'seconds'):10.2f}s {median(lf, 'peak_mb'):8.0f} "
                f"{median(lf, 'disk_mb'):8.1f}")  # fmt: skip
        if args.metaflow and not any(k in label for k in ("threads", "sequential")):
            mf = bench(args.metaflow, "metaflow", name, mf_args, repeat, fresh)
            ratio = median(mf, "seconds") / median(lf, "seconds")
            line += (f" {median(mf, 'seconds'):9.2f}s {median(mf, 'peak_mb'):8.0f} "
                     f"{median(mf, 'disk_mb'):8.1f} {ratio:6.1f}x")  # fmt: skip
        print(line, flush=True)
    if not wanted or any(w in "progress" for w in wanted):
        print("run console overhead (progress.py):", flush=True)
        progress_overhead(max(repeat, 5))
    label = "read one artifact in a fresh process"
    if not wanted or any(w in label for w in wanted):
        lf_read = read_in_fresh_process(LEDGERFLOW_PYTHON, "ledgerflow", max(repeat, 5))
        line = f"{label:42} {lf_read:10.2f}s"
        if args.metaflow:
            mf_read = read_in_fresh_process(args.metaflow, "metaflow", max(repeat, 5))
            line += f" {'':17} {mf_read:9.2f}s {'':17} {mf_read / lf_read:6.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
