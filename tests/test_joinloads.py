"""A join reads its inputs a column at a time: the first value read of an artifact readies
that artifact's small values of every input in a few queries (BlobStore.prefetch), each
checked as a single load checks it; a damaged one is left for its own load to refuse."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ledgerflow import codec, writes
from ledgerflow.blobstore import PREFETCH_BATCH, PREFETCH_ITEM_BYTES
from ledgerflow.client import Flow, namespace
from ledgerflow.exceptions import CorruptBlobError
from ledgerflow.joins import ColumnLoads
from ledgerflow.ledger import Ledger
from ledgerflow.records import ArtifactRecord

from .helpers import run_flow


def stored(ledger: Ledger, value: object, chunk_size: int = 65536) -> str:
    blob = codec.encode_blob(value, chunk_size)
    writes.store_blobs(ledger, [blob])
    return blob.sha


def chunk_rows(db: Path, sha: str) -> list[tuple[int, bytes]]:
    conn = sqlite3.connect(db)
    rows = conn.execute("select id, data from blob_chunk where sha = ? order by seq", (sha,))
    found = rows.fetchall()
    conn.close()
    return found


def test_prefetch_keeps_small_values_that_pass_every_check(db_path):
    ledger = Ledger(db_path)
    good = [stored(ledger, {"i": i}) for i in range(5)]
    big = stored(ledger, os.urandom(PREFETCH_ITEM_BYTES + 1))  # past the size: a single load
    chunked = stored(ledger, list(range(3000)), chunk_size=1024)  # several chunks
    altered = stored(ledger, {"i": "altered"})
    extra = stored(ledger, {"i": "extra chunk"})
    ledger.close()
    # A valid frame of other bytes (only the SHA-256 can tell), and a stray second chunk.
    row_id, frame = chunk_rows(db_path, altered)[0]
    piece = bytearray(codec.decompress_chunk(frame, 65536))
    piece[-3] ^= 0x01
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("update blob_chunk set data = ? where id = ?",
                     (codec.compress_frame(bytes(piece)), row_id))  # fmt: skip
        conn.execute("insert into blob_chunk(sha, seq, data) values (?, 1, ?)",
                     (extra, codec.compress_frame(b"x")))  # fmt: skip
    conn.close()
    Ledger.forget(db_path)
    ledger = Ledger(db_path)
    wanted = [*good, big, chunked, altered, extra]

    assert ledger.blobs.prefetch(wanted) == len(good)

    cached = {sha for sha in wanted if ledger.blobs.cache.get(sha) is not None}
    assert cached == set(good)
    assert [ledger.load(sha) for sha in good] == [{"i": i} for i in range(5)]
    assert ledger.load(big) and ledger.load(chunked) == list(range(3000))
    with pytest.raises(CorruptBlobError, match=altered[:12]):
        ledger.load(altered)
    with pytest.raises(CorruptBlobError, match=extra[:12]):
        ledger.load(extra)


def test_prefetch_reads_a_column_in_a_query_a_batch(db_path):
    ledger = Ledger(db_path)
    writes.store_blobs(ledger, [codec.encode_blob(i) for i in range(PREFETCH_BATCH + 10)])
    shas = [codec.encode_blob(i).sha for i in range(PREFETCH_BATCH + 10)]
    Ledger.forget(db_path)
    ledger = Ledger(db_path)
    selects: list[str] = []
    ledger.blobs._connection().set_trace_callback(
        lambda sql: selects.append(sql) if "json_each" in sql else None
    )
    assert ledger.blobs.prefetch(shas) == len(shas)
    assert len(selects) == 2
    assert ledger.blobs.prefetch(shas) == 0  # all cached: no query
    assert len(selects) == 2


class Recording:
    """A BlobAccess that records what it is asked."""

    def __init__(self, values: dict[str, object]):
        self.values, self.prefetched, self.loaded = values, [], []

    def load(self, sha: str) -> object:
        self.loaded.append(sha)
        return self.values[sha]

    def prefetch(self, shas: list[str]) -> None:
        self.prefetched.append(list(shas))


def record(name: str, sha: str) -> ArtifactRecord:
    return ArtifactRecord(name, sha, "json", "int", 1)


def test_the_first_read_of_a_column_readies_the_whole_column_once():
    inputs = [{"x": record("x", f"x{i}"), "shared": record("shared", "s")} for i in range(4)]
    inputs.append({"x": record("x", "x0"), "shared": record("shared", "s")})  # equal value
    blobs = Recording({f"x{i}": i for i in range(4)} | {"s": "same", "other": 9})
    loads = ColumnLoads(inputs, blobs)

    assert [loads.load(f"x{i}") for i in (2, 0, 1, 3, 0)] == [2, 0, 1, 3, 0]
    assert blobs.prefetched == [["x0", "x1", "x2", "x3"]]  # once, distinct, in input order
    assert loads.load("s") == "same" and loads.load("other") == 9
    assert blobs.prefetched == [["x0", "x1", "x2", "x3"]]  # one value: nothing to ready
    assert blobs.loaded == ["x2", "x0", "x1", "x3", "x0", "s", "other"]


JOIN_FLOW = """
from ledgerflow import FlowSpec, step

class ColumnJoin(FlowSpec):
    @step
    def start(self):
        self.items = list(range(40))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.out = {"n": self.input * 3}
        self.big = bytes([self.input]) * 100_000  # past the prefetch size: loaded alone
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out["n"] for i in inputs)
        self.bigs = sorted(i.big[0] for i in inputs)
        self.items_seen = {len(i.items) for i in inputs}
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    ColumnJoin()
"""


@pytest.mark.parametrize("executor", ["process", "thread"])
def test_a_join_reading_columns_of_its_inputs_gets_each_inputs_values(tmp_path, executor):
    flow = tmp_path / "column_join.py"
    flow.write_text(JOIN_FLOW)
    db = tmp_path / "ledgerflow.db"
    run_flow(flow, "--executor", executor, db=db)
    namespace(None)
    data = Flow("ColumnJoin", ledger=db).latest_run["join"].task.data
    assert data.total == 3 * sum(range(40))
    assert data.bigs == list(range(40))
    assert data.items_seen == {40}
