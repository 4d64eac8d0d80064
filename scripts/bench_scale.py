"""Read latency on a big ledger: p50/p95 of the commands people run on 100,000 runs.

    .venv/bin/python scripts/build_big_ledger.py /tmp/big.db --wide 10000   # ~4 minutes
    .venv/bin/python scripts/bench_scale.py /tmp/big.db --repeat 20

"cli" rows time the whole `ledgerflow ...` process (interpreter start-up included) with its
output to a pipe; "api" rows time one call in this process (ledger already open, as in a
notebook). Each row gives wall-clock and CPU time (the CPU column does not count waiting
for a core, so it stays meaningful on a busy machine; the load average is printed). The wide-step rows need the `WideFlow` run that `--wide N` adds. `gc` is timed
on a ledger with nothing to collect (the first call may collect what the build left).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ledgerflow import Step, namespace, search, sql

LEDGERFLOW = str(Path(sys.executable).with_name("ledgerflow"))
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]  # fmt: skip
BEST = "select run_id, value from artifacts where name = 'accuracy' order by value desc limit 5"


def at(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each call. On a machine shared with other work the
    wall clock includes waiting for a core; the CPU time does not."""
    fn()  # warm the page cache and this process's caches once
    wall, cpu = [], []
    for _ in range(repeat):
        c, t = cpu_seconds(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(cpu_seconds() - c)
    return wall, cpu


def cli(db: Path, *args: str) -> Callable[[], object]:
    def run() -> None:
        done = subprocess.run([LEDGERFLOW, "--db", str(db), *args], capture_output=True,
                              text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"ledgerflow {' '.join(args)} failed:\n{done.stderr}")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--repeat", type=int, default=20, help="samples per cli row")
    parser.add_argument("--api-repeat", type=int, default=200, help="samples per api row")
    parser.add_argument("--only", default="", help="comma-separated row names to run")
    args = parser.parse_args()
    namespace(None)
    db, rng = args.db, random.Random(7)
    words = itertools.cycle(WORDS)
    counter = itertools.count()
    wide = sql("select pathspec from runs where flow = 'WideFlow' order by created_at desc "
               "limit 1", ledger=db)  # fmt: skip
    wide_step = f"{wide[0]['pathspec']}/fan" if wide else None

    def first_tasks(n: int = 20) -> None:
        assert wide_step is not None
        list(itertools.islice(Step(wide_step, ledger=db), n))

    rows: list[tuple[str, str, Callable[[], object], int]] = [
        ("runs", "cli: ledgerflow runs (first page)", cli(db, "runs"), args.repeat),
        ("show-flow", "cli: ledgerflow show TrainFlow", cli(db, "show", "TrainFlow"), args.repeat),
        (
            "best-sql",
            "api: ledgerflow.sql(best 5 accuracy)",
            lambda: sql(BEST, ledger=db),
            args.api_repeat,
        ),
        ("best-cli", "cli: ledgerflow sql (best 5 accuracy)", cli(db, "sql", BEST), args.repeat),
        (
            "search-word",
            "api: search(word) (in ~75% of runs)",
            lambda: search(next(words), limit=20, ledger=db),
            args.api_repeat,
        ),
        (
            "search-keyword",
            "api: search('keyword-N') (one run)",
            lambda: search(f"keyword-{rng.randrange(100_000)}", ledger=db),
            args.api_repeat,
        ),
        (
            "search-prefix",
            "api: search('resnet5*')",
            lambda: search("resnet5*", limit=20, ledger=db),
            args.api_repeat,
        ),
        (
            "search-prefix-flow",
            "api: search('resnet5*', flow='TrainFlow')",
            lambda: search("resnet5*", flow="TrainFlow", limit=20, ledger=db),
            args.api_repeat,
        ),
        (
            "search-prefix-short",
            "api: search('ke*')",
            lambda: search("ke*", limit=20, ledger=db),
            args.api_repeat,
        ),
        (
            "search-prefix-var",
            "api: search('\"keyword 12\"*') (varied)",
            lambda: search(f'"keyword {next(counter) % 90 + 10}"*', limit=20, ledger=db),
            args.api_repeat,
        ),
        (
            "search-cli",
            "cli: ledgerflow search 'resnet5*'",
            cli(db, "search", "resnet5*"),
            args.repeat,
        ),
        ("stats", "cli: ledgerflow stats", cli(db, "stats"), args.repeat),
        ("gc", "cli: ledgerflow gc (nothing to collect)", cli(db, "gc"), args.repeat),
    ]
    if wide_step:
        rows += [
            ("wide-api", "api: first 20 tasks of a 10,000-task step", first_tasks, args.api_repeat),
            (
                "wide-show",
                "cli: ledgerflow show FLOW/RUN/fan (10,000 tasks)",
                cli(db, "show", wide_step),
                args.repeat,
            ),
        ]
    only = {name for name in args.only.split(",") if name}
    size = db.stat().st_size / 1e6
    runs = sql("select count(*) as n from run", ledger=db)[0]["n"]
    print(f"{db} ({size:.0f} MB, {runs} runs); load average {os.getloadavg()[0]:.1f}")
    print("| what | p50 ms | p95 ms | CPU p50 ms | CPU p95 ms |\n|---|---|---|---|---|")
    for name, label, fn, repeat in rows:
        if only and name not in only:
            continue
        wall, cpu = timed(fn, repeat)
        print(
            f"| {label} | {at(wall, 0.5):.1f} | {at(wall, 0.95):.1f} | {at(cpu, 0.5):.1f} "
            f"| {at(cpu, 0.95):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
