"""Search and SQL latency as a ledger grows: builds ledgers of N runs (real runs of
scripts/history_flow.py, in-process) and reports latency percentiles.

    .venv/bin/python scripts/bench_query.py --runs 1000 10000

Each size is a fresh ledger in a temporary folder (or --keep DIR to reuse them).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history_flow import WORDS, HistoryFlow

from ledgerflow.executors import SequentialExecutor
from ledgerflow.fulltext import search
from ledgerflow.ledger import Ledger
from ledgerflow.query import sql
from ledgerflow.runtime import Runtime


def build(path: Path, runs: int) -> float:
    ledger = Ledger.open(path)
    have = ledger.execute("select count(*) from run").fetchone()[0]
    started = time.perf_counter()
    for seed in range(have, runs):
        Runtime(HistoryFlow, ledger, {"seed": seed}, executor=SequentialExecutor(),
                quiet=True, echo_logs=False).run()  # fmt: skip
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
    return f"p50 {p(0.5):7.2f} ms   p95 {p(0.95):7.2f} ms   max {ordered[-1] * 1000:7.2f} ms"


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep ledgers in")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ledgerflow-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    for runs in args.runs:
        path = folder / f"history-{runs}.db"
        took = build(path, runs)
        print(f"\n== {runs} runs ({path.stat().st_size / 1e6:.1f} MB; built in {took:.1f} s, "
              f"{took / max(runs, 1) * 1000:.1f} ms per new run)")
        best = ("select run_id, value from artifacts where name = 'accuracy' "
                "order by value desc limit 1")
        print("sql best accuracy    ", percentiles(timed(lambda: sql(best, ledger=path),
                                                          args.repeat)))
        print("search word          ", percentiles(timed(
            lambda: search(rng.choice(WORDS), limit=20, ledger=path), args.repeat)))
        print("search keyword-N     ", percentiles(timed(
            lambda: search(f"keyword-{rng.randrange(runs)}", ledger=path), args.repeat)))
        print("search resnet5*      ", percentiles(timed(
            lambda: search("resnet5*", flow="HistoryFlow", limit=20, ledger=path), args.repeat)))
        Ledger.forget(path)


if __name__ == "__main__":
    main()
