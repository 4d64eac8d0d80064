"""An artifact stored across many chunks round-trips, streamed chunk by chunk.

The default run proves the chunk boundary with a 5 MB value and a 1 MiB chunk size
(LEDGERFLOW_CHUNK_SIZE): the same code path a multi-GB value takes, in well under a second.
The value above SQLite's 1 GB limit, with peak memory near one copy of it, is the slow test
(about 30-60 s and 3 GB of RAM): `pytest -m slow tests/test_huge.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .helpers import FLOWS, latest_run_id, query, run_flow

SIZE_MB = 1536
SIZE = SIZE_MB * 1024 * 1024
LOAD = """
import hashlib, json, resource, sys
from ledgerflow import Run, namespace
namespace(None)
task = Run(sys.argv[1], ledger=sys.argv[2])["end"].task
big = task["big"].data
print(json.dumps({"sha": hashlib.sha256(big).hexdigest(), "len": len(big),
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _load_in_fresh_process(run_id: str, db_path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, f"HugeFlow/{run_id}", str(db_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_value_of_many_chunks_round_trips_across_chunk_boundaries(db_path, monkeypatch):
    chunk = 1024 * 1024
    monkeypatch.setenv("LEDGERFLOW_CHUNK_SIZE", str(chunk))
    run_flow(FLOWS / "huge" / "huge_flow.py", "--mb", "5", db=db_path)
    run_id = latest_run_id(db_path, "HugeFlow")
    ((raw_size, n_chunks, chunk_size),) = query(
        db_path, "select raw_size, n_chunks, chunk_size from blob where raw_size > ?", (5 * chunk,)
    )
    assert chunk_size == chunk and n_chunks == -(-raw_size // chunk) == 6
    # One zstd frame per chunk, each about a chunk (random bytes do not compress).
    sizes = [r[0] for r in query(db_path, "select length(data) from blob_chunk b join blob "
                                          "using (sha) where raw_size > ? order by seq",
                                 (5 * chunk,))]  # fmt: skip
    assert len(sizes) == 6 and max(sizes) < chunk + 1024
    values = dict(
        query(
            db_path,
            "select name, value from artifacts where run_id = ? and "
            "name in ('ok', 'length', 'digest')",
            (run_id,),
        )
    )
    assert values["ok"] == 1 and values["length"] == 5 * chunk
    loaded = _load_in_fresh_process(run_id, db_path)  # reads the chunk size from the blob
    assert loaded["len"] == 5 * chunk and loaded["sha"] == values["digest"]


@pytest.mark.slow
def test_a_1_5_gb_artifact_round_trips_in_chunks_with_one_copy_in_memory(db_path):
    run_flow(FLOWS / "huge" / "huge_flow.py", "--mb", str(SIZE_MB), db=db_path)
    run_id = latest_run_id(db_path, "HugeFlow")
    ((raw_size, n_chunks, chunk_size),) = query(
        db_path, "select raw_size, n_chunks, chunk_size from blob where raw_size > 1000000000"
    )
    assert raw_size > SIZE and n_chunks == -(-raw_size // chunk_size)
    (largest,) = query(db_path, "select max(length(data)) from blob_chunk")[0]
    assert largest < 1_000_000_000
    values = dict(
        query(
            db_path,
            "select name, value from artifacts where run_id = ? and "
            "name in ('ok', 'length', 'peak_rss', 'digest')",
            (run_id,),
        )
    )
    assert values["ok"] == 1 and values["length"] == SIZE
    # The flow process held the value once (plus chunk-sized buffers), not 2-3 times.
    assert values["peak_rss"] < 1.35 * SIZE, values["peak_rss"] / SIZE
    # A fresh process loading it through the Client API: one copy too.
    loaded = _load_in_fresh_process(run_id, db_path)
    assert loaded["len"] == SIZE and loaded["sha"] == values["digest"]
    assert loaded["peak"] < 1.35 * SIZE, loaded["peak"] / SIZE
    print(
        f"peak RSS: flow {values['peak_rss'] / 2**30:.2f} GiB, "
        f"load {loaded['peak'] / 2**30:.2f} GiB for a {SIZE / 2**30:.2f} GiB value"
    )
