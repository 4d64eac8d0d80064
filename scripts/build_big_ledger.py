"""Build a big ledger without running flows: 100,000 runs and 1,000,000 artifacts by default.

    .venv/bin/python scripts/build_big_ledger.py /tmp/big.db                  # 100k runs
    .venv/bin/python scripts/build_big_ledger.py /tmp/wide.db --runs 1 --wide 10000

Everything goes through the ledger's own writer (`Ledger.create_run`, `record_tasks`,
`finish_run`), so the rows, the blobs and both full-text indexes are exactly what real runs
write. Shapes: four flows (TrainFlow, EtlFlow, SweepFlow, EvalFlow), runs
start -> train -> end with parameters, system and user tags (`nightly`, `exp-N`, ...), and
ten produced artifacts per run (ints, floats, strings with words and `keyword-N`, dicts,
lists) plus the ones `end` inherits; every task has a stdout log, one run in 50 failed in
`train` with an exception, one task in 20 took two attempts. `--wide N` adds a run whose
`fan` step has N foreach tasks (some with a retried attempt), for `show` and the Client
API on a wide step. Runs are written `--batch` at a time per transaction; an existing
ledger is extended up to `--runs`.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledgerflow import writes
from ledgerflow.ledger import Ledger
from ledgerflow.records import TaskRecord
from ledgerflow.runtime import new_run_id
from ledgerflow.task import encode_artifact

FLOWS = ["TrainFlow", "EtlFlow", "SweepFlow", "EvalFlow"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]  # fmt: skip
START = datetime(2025, 1, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_values(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The artifacts `start` and `train` produce in run number `seed` (ten in all)."""
    start = {
        "seed": seed,
        "model_name": f"resnet{50 + seed % 7}_v{seed % 3}",
        "notes": " ".join(WORDS[(seed * 7 + i) % len(WORDS)] for i in range(12))
        + f" keyword-{seed}",
        "config": {
            "lr": 10 ** -(1 + seed % 4),
            "batch_size": 32 * (1 + seed % 4),
            "optimizer": ["sgd", "adam", "adamw"][seed % 3],
        },
        "dataset": f"s3://bucket/data/part-{seed % 200:04d}.parquet",
        "features": [f"f{(seed + i) % 40}" for i in range(6)],
    }
    train = {
        "accuracy": round(0.5 + ((seed * 7919) % 5000) / 10000, 4),
        "loss": round(((seed * 104729) % 10000) / 5000, 4),
        "epochs": 5 + seed % 20,
        "history": [round(1 / (1 + e + seed % 5), 4) for e in range(8)],
    }
    return start, train


def _encoded(values: dict[str, Any], chunk_size: int) -> list[tuple[Any, Any]]:
    return [encode_artifact(name, value, chunk_size) for name, value in values.items()]


def _with_inherited(own: list[tuple[Any, Any]], passed: list[tuple[Any, Any]]) -> list[Any]:
    return [r for r, _ in own] + [type(r)(**{**r.__dict__, "inherited": True})
                                  for r, _ in passed]  # fmt: skip


def run_tasks(ledger: Ledger, run_pk: int, seed: int, t0: datetime) -> tuple[list, str]:
    """Task records for one run, and the run's final status."""
    start_vals, train_vals = run_values(seed)
    start_enc = _encoded(start_vals, ledger.chunk_size)
    train_enc = _encoded(train_vals, ledger.chunk_size)
    fails = seed % 50 == 49
    out = []

    def at(s: float) -> str:
        return iso(t0 + timedelta(seconds=s))

    out.append(TaskRecord(run_pk, "start", "1", "succeeded", at(0), at(0.2),
                          artifacts=_with_inherited(start_enc, []),
                          blobs=[b for _, b in start_enc],
                          stdout=f"loading {start_vals['dataset']}\n"))  # fmt: skip
    retried = seed % 20 == 3
    if retried:
        out.append(TaskRecord(run_pk, "train", "2", "failed", at(0.3), at(0.5), attempt=0,
                              exception_type="builtins.ConnectionError",
                              exception=f"timeout talking to shard {seed % 9}",
                              stdout="epoch 1\n", stderr="retrying\n"))  # fmt: skip
    status = "failed" if fails else "succeeded"
    train = TaskRecord(run_pk, "train", "2", status, at(0.6), at(2.0),
                       attempt=1 if retried else 0,
                       stdout="".join(f"epoch {e} loss {v}\n"
                                      for e, v in enumerate(train_vals["history"])))  # fmt: skip
    if fails:
        train.exception_type = "builtins.ValueError"
        train.exception = f"bad item {seed % 1000} in batch"
        train.traceback = "Traceback (most recent call last):\n  ...\nValueError: bad item\n"
    else:
        train.artifacts = _with_inherited(train_enc, start_enc)
        train.blobs = [b for _, b in train_enc]
    out.append(train)
    if fails:
        return out, "failed"
    out.append(TaskRecord(run_pk, "end", "3", "succeeded", at(2.1), at(2.2),
                          artifacts=_with_inherited([], start_enc + train_enc),
                          stdout=f"accuracy {train_vals['accuracy']}\n"))  # fmt: skip
    return out, "succeeded"


def add_runs(ledger: Ledger, first: int, last: int) -> None:
    """Runs number first..last-1, each created, its tasks written in one transaction, ended."""
    for seed in range(first, last):
        flow = FLOWS[seed % len(FLOWS)]
        t0 = START + timedelta(seconds=seed * 37)
        tags = ["nightly"] if seed % 3 == 0 else []
        tags.append(f"exp-{seed % 500}")
        run_pk = writes.create_run(
            ledger,
            flow, new_run_id(), params={"seed": seed, "lr": 10 ** -(1 + seed % 4)},
            user=f"user{seed % 5}", code=None, script_name=f"{flow.lower()}.py",
            tags=tags, system_tags=[f"user:user{seed % 5}", "runtime:dev"],
        )  # fmt: skip
        records, status = run_tasks(ledger, run_pk, seed, t0)
        writes.record_tasks(ledger, records)
        writes.finish_run(ledger, run_pk, status)
        _restamp(ledger, run_pk, t0)  # spread over time as real runs are


def _restamp(ledger: Ledger, run_pk: int, t0: datetime) -> None:
    with ledger.write() as conn:
        conn.execute(
            "update run set created_at = ?, finished_at = ?, heartbeat_at = ? where id = ?",
            (iso(t0), iso(t0 + timedelta(seconds=2.3)), iso(t0), run_pk),
        )


def add_wide_run(ledger: Ledger, width: int, batch: int = 1000) -> str:
    """A WideFlow run whose `fan` step has `width` foreach tasks; one in 10 has two attempts.
    Returns its pathspec."""
    run_id = new_run_id()
    run_pk = writes.create_run(ledger, "WideFlow", run_id, params={"n": width}, user="bench",
                               code=None, script_name="wide.py",
                               system_tags=["user:bench"])  # fmt: skip
    t0 = datetime.now(UTC)
    start_rec, start_blob = encode_artifact("items", list(range(width)), ledger.chunk_size)
    start_pk = writes.record_tasks(ledger, [TaskRecord(
        run_pk, "start", "1", "succeeded", iso(t0), iso(t0), artifacts=[start_rec],
        blobs=[start_blob])])[0]  # fmt: skip
    for lo in range(0, width, batch):
        records = []
        for i in range(lo, min(width, lo + batch)):
            started = t0 + timedelta(milliseconds=i + 1)
            own = _encoded({"x": i, "square": i * i}, ledger.chunk_size)
            stack = [["start", "items", width, i, repr(i)]]
            if i % 10 == 0:
                records.append(TaskRecord(run_pk, "fan", str(i + 2), "failed", iso(started),
                                          iso(started), attempt=0, foreach_index=i,
                                          foreach_stack=stack, parent_pks=[start_pk],
                                          exception_type="builtins.OSError",
                                          exception="flaky"))  # fmt: skip
            records.append(TaskRecord(run_pk, "fan", str(i + 2), "succeeded",
                                      iso(started + timedelta(microseconds=500)),
                                      iso(started + timedelta(microseconds=900)),
                                      attempt=1 if i % 10 == 0 else 0, foreach_index=i,
                                      foreach_stack=stack, parent_pks=[start_pk],
                                      artifacts=[r for r, _ in own], blobs=[b for _, b in own],
                                      stdout=f"item {i}\n"))  # fmt: skip
        writes.record_tasks(ledger, records)
    writes.finish_run(ledger, run_pk, "succeeded")
    return f"WideFlow/{run_id}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--wide", type=int, default=0, help="add a run with an N-task foreach")
    args = parser.parse_args()
    ledger = Ledger.open(args.path)
    have = ledger.execute("select count(*) from run where flow_id in "
                          "(select id from flow where name != 'WideFlow')").fetchone()[0]  # fmt: skip
    started = time.perf_counter()
    step = 1000
    for lo in range(have, args.runs, step):
        add_runs(ledger, lo, min(args.runs, lo + step))
        done = min(args.runs, lo + step)
        rate = (done - have) / (time.perf_counter() - started)
        print(f"\r{done}/{args.runs} runs, {rate:.0f} runs/s", end="", file=sys.stderr)
    if args.runs > have:
        print(file=sys.stderr)
    if args.wide:
        print("wide run:", add_wide_run(ledger, args.wide))
    counts = ledger.execute(
        "select (select count(*) from run), (select count(*) from artifact where inherited = 0),"
        " (select count(*) from artifact), (select count(*) from task)").fetchone()  # fmt: skip
    print(f"{args.path}: {counts[0]} runs, {counts[1]} artifacts produced ({counts[2]} rows with"
          f" inherited), {counts[3]} task attempts, {args.path.stat().st_size / 1e6:.0f} MB,"
          f" built in {time.perf_counter() - started:.0f} s")  # fmt: skip
    Ledger.forget(args.path)


if __name__ == "__main__":
    main()
