"""Client, SQL and search latency as a ledger grows (1k, 10k, 100k runs).

    .venv/bin/python scripts/bench_query.py --runs 1000 10000 100000

The first runs of each ledger are real runs of scripts/history_flow.py (in-process); the
rest are written through the ledger's own API with the same shape (three tasks, the same
artifacts with varied values), which builds 100k runs in about a minute. Reported: p50/p95
of reading one artifact through the Client API, the best `accuracy` by SQL, and full-text
searches, each repeated --repeat times. Ledgers go to a temporary folder (or --keep DIR).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history_flow import WORDS, HistoryFlow  # noqa: E402

from ledgerflow import DataArtifact, namespace, search, sql, writes  # noqa: E402
from ledgerflow.clock import now_iso  # noqa: E402
from ledgerflow.executors import SequentialExecutor  # noqa: E402
from ledgerflow.ledger import Ledger  # noqa: E402
from ledgerflow.records import TaskRecord  # noqa: E402
from ledgerflow.runtime import Runtime, new_run_id  # noqa: E402
from ledgerflow.task import encode_artifact  # noqa: E402

REAL_RUNS = 200


def history_values(seed: int) -> dict[str, object]:
    return {
        "seed": seed,
        "name": "HistoryFlow",
        "model_name": f"resnet{50 + seed % 7}_v{seed % 3}",
        "notes": " ".join(WORDS[(seed * 7 + i) % len(WORDS)] for i in range(12))
        + f" keyword-{seed}",
        "config": {"lr": 10 ** -(1 + seed % 4), "batch_size": 32 * (1 + seed % 4)},
        "accuracy": round(0.5 + ((seed * 7919) % 5000) / 10000, 4),
    }


def write_run(ledger: Ledger, seed: int) -> None:
    """One run shaped like history_flow's, through the ledger API (no flow executed)."""
    values = history_values(seed)
    encoded = {n: encode_artifact(n, v, ledger.chunk_size) for n, v in values.items()}
    run_pk = writes.create_run(ledger, "HistoryFlow", new_run_id(), params={"seed": seed}, user="bench",
                               code=None, script_name="history_flow.py",
                               system_tags=["user:bench", "runtime:dev"])  # fmt: skip
    now = now_iso()
    records, parent = [], None
    produced = {"start": ["seed", "name", "model_name", "notes", "config"],
                "train": ["accuracy"], "end": []}  # fmt: skip
    seen: list[str] = []
    for i, step in enumerate(("start", "train", "end")):
        seen += produced[step]
        arts = []
        for name in seen:
            record, _ = encoded[name]
            arts.append(type(record)(**{**record.__dict__,
                                        "inherited": name not in produced[step]}))  # fmt: skip
        blobs = [encoded[n][1] for n in produced[step]]
        records.append(TaskRecord(run_pk, step, str(i + 1), "succeeded", now, now,
                                  artifacts=arts, blobs=blobs))  # fmt: skip
    for record in records:  # one task after another, each linked to its parent
        if parent is not None:
            record.parent_pks = [parent]
        parent = writes.record_tasks(ledger, [record])[0]
    writes.finish_run(ledger, run_pk, "succeeded")


def build(path: Path, runs: int) -> float:
    ledger = Ledger.open(path)
    have = ledger.execute("select count(*) from run").fetchone()[0]
    started = time.perf_counter()
    for seed in range(have, runs):
        if seed < REAL_RUNS:
            Runtime(HistoryFlow, ledger, {"seed": seed}, executor=SequentialExecutor(),
                    quiet=True, echo_logs=False).run()  # fmt: skip
        else:
            write_run(ledger, seed)
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return f"p50 {at(0.5):7.3f} ms   p95 {at(0.95):7.3f} ms"


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
    namespace(None)
    for runs in args.runs:
        path = folder / f"history-{runs}.db"
        took = build(path, runs)
        print(f"\n== {runs} runs ({path.stat().st_size / 1e6:.1f} MB; built in {took:.1f} s)")
        measure(path, runs, rng, args.repeat)
        Ledger.forget(path)


def measure(path: Path, runs: int, rng: random.Random, repeat: int) -> None:
    """Read latency on one history ledger: an artifact through the Client API, SQL, search."""
    run_ids = [r["run_id"] for r in sql("select run_id from runs", ledger=path)]
    best = ("select run_id, value from artifacts where name = 'accuracy' "
            "order by value desc limit 1")  # fmt: skip

    def read_one() -> None:
        run_id = rng.choice(run_ids)
        _ = DataArtifact(f"HistoryFlow/{run_id}/train/2/accuracy", ledger=path).data

    print("client: one artifact ", percentiles(timed(read_one, repeat)))
    print("sql best accuracy    ", percentiles(timed(lambda: sql(best, ledger=path), repeat)))
    print(
        "search a word        ",
        percentiles(timed(lambda: search(rng.choice(WORDS), limit=20, ledger=path), repeat)),
    )
    print("search keyword-N     ",
          percentiles(timed(lambda: search(f"keyword-{rng.randrange(runs)}", ledger=path),
                            repeat)))  # fmt: skip
    print("search resnet5* flow ",
          percentiles(timed(lambda: search("resnet5*", flow="HistoryFlow", limit=20,
                                           ledger=path), repeat)))  # fmt: skip


if __name__ == "__main__":
    main()
