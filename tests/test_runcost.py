"""The runtime's per-task write path, made cheaper, writes what it wrote before: a run's rows,
its search index and its logs are the same with the default executor (one process a task)
and with threads; blobs stored in a batch are the rows `put` stores one by one; the reuse
key, the task row's values and the stored times are the text the general code makes."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerflow import codec, writes
from ledgerflow.clock import now_iso, stored_from_timestamp
from ledgerflow.fulltext import search
from ledgerflow.ledger import Ledger
from ledgerflow.records import TaskRecord
from ledgerflow.tables import TASK
from ledgerflow.taskreuse import key_head, key_text, task_key

from .helpers import FLOWS, query, run_flow

MIXED = FLOWS / "runcost" / "mixed_flow.py"


def _rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """What a run wrote, without what differs between two runs (ids, times, run ids)."""
    task = "t.step, t.task_id, t.attempt"
    return {
        "tasks": query(
            db,
            f"select {task}, t.status, t.foreach_index, t.foreach_stack, "
            "t.exception_type, t.exception, t.transition, t.host from task t "
            "order by t.id",
        ),  # fmt: skip
        "parents": query(
            db,
            "select c.step, c.task_id, p.step, p.task_id from task_parent tp "
            "join task c on c.id = tp.task_id join task p on p.id = tp.parent_id "
            "order by 1, 2, 3, 4",
        ),  # fmt: skip
        "artifacts": query(
            db,
            f"select {task}, a.name, a.sha, a.encoding, a.type, a.size, "
            "a.value, a.inherited from artifact a join task t on "
            "t.id = a.task_id order by 1, 2, 3, 4",
        ),  # fmt: skip
        "blobs": query(
            db,
            "select sha, codec, encoding, raw_size, stored_size, chunk_size, "
            "n_chunks, python_version, preview from blob order by sha",
        ),
        "chunks": query(db, "select sha, seq, length(data) from blob_chunk order by sha, seq"),
        "logs": query(
            db,
            f"select {task}, l.stream, l.text from log l join task t on "
            "t.id = l.task_id order by 1, 2, 3, 4",
        ),  # fmt: skip
        "log text": query(
            db,
            f"select {task}, p.stream, p.byte_start, p.bytes, p.newlines "
            "from log_piece p join task t on t.id = p.task_id "
            "order by 1, 2, 3, 4, 5",
        ),  # fmt: skip
        "keys": query(
            db,
            f"select {task}, k.key, k.code, k.inputs, k.env from task_key k "
            "join task t on t.id = k.task_pk order by 1, 2, 3",
        ),  # fmt: skip
        "artifact index": query(
            db, "select name, flow, step, preview from artifact_fts order by 1, 2, 3, 4"
        ),  # fmt: skip
        "exception index": query(db, "select text from task_fts order by 1"),
        "log index": query(db, "select count(*) from log_fts"),
        # None, bytes and bools are bound as they were before adapters were registered
        "types": query(
            db,
            "select distinct typeof(finished_at), typeof(traceback), "
            "typeof(host) from task where status != 'running'",
        ),  # fmt: skip
        "chunk types": query(db, "select distinct typeof(data) from blob_chunk"),
    }


def _hits(db: Path, word: str) -> list[tuple[str, str, str, str]]:
    ledger = Ledger.open(db, reader=True)
    found = search(word, limit=100, ledger=ledger)
    return sorted((h.step, h.task_id, h.name, h.kind) for h in found)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("runcost")
    forked, threaded = folder / "forked.db", folder / "threaded.db"
    run_flow(MIXED, db=forked)
    run_flow(MIXED, "--executor", "thread", db=threaded)
    return forked, threaded


def test_a_run_writes_the_same_rows_with_one_process_a_task_as_with_threads(two_runs):
    forked, threaded = _rows(two_runs[0]), _rows(two_runs[1])
    for table in forked:
        assert forked[table] == threaded[table], table
    # (and the run wrote what the flow made: nothing above is vacuously equal)
    assert len(forked["tasks"]) == 27
    assert ("work", "8", 0, "succeeded") in [row[:4] for row in forked["tasks"]]
    assert forked["exception index"] == [("builtins.ValueError: seven is unlucky",)]
    assert set(forked["types"]) == {("text", "null", "null"), ("text", "text", "null")}
    assert forked["chunk types"] == [("blob",)]
    assert len(forked["logs"]) == 2 * 27
    assert forked["log index"][0][0] > 0


@pytest.mark.parametrize("word", ["zebracrossing", "walrus5", "walrus7", "hello", "stderr",
                                  "unlucky", "words"])  # fmt: skip
def test_search_finds_the_same_with_one_process_a_task_as_with_threads(two_runs, word):
    forked = _hits(two_runs[0], word)
    assert forked == _hits(two_runs[1], word)
    assert forked  # each word is there to be found


def test_every_task_output_arrives_whole_with_one_process_a_task(two_runs):
    """Output printed just before a task's result (or as its last, unfinished line) is read
    before the task's pipes are closed."""
    from ledgerflow import Flow, namespace

    namespace(None)
    run = Flow("MixedFlow", ledger=str(two_runs[0])).latest_run
    for task in run["work"]:
        i = int(task["text"].data.removeprefix("walrus").split()[0])  # (set before 7 raises)
        if i == 7:  # @catch says what it caught
            assert "seven is unlucky" in task.stdout
            continue
        out = f"task {i} says hello\n" if i % 3 == 0 else ""
        out += f"last words of {i}\n" if i % 5 == 0 else ""  # (ended, as Metaflow's)
        assert task.stdout == out, task.pathspec
        err = f"task {i} to stderr\n" if i % 3 == 0 else ""
        assert task.stderr.startswith(err), task.pathspec


def _blob(value: object, chunk_size: int = codec.DEFAULT_CHUNK_SIZE) -> codec.EncodedBlob:
    return codec.encode_blob(value, chunk_size)


def test_blobs_stored_in_a_batch_are_the_rows_put_stores_one_by_one(tmp_path):
    present = _blob("stored before")
    values = ["a", "b", "a", 1, None, b"bytes", list(range(50)), "stored before"]
    big = _blob(bytes(random.Random(0).randbytes(300_000)), chunk_size=65536)  # 5 chunks
    one, batch = Ledger.open(tmp_path / "one.db"), Ledger.open(tmp_path / "batch.db")
    for ledger in (one, batch):
        with ledger.write() as conn:
            ledger.blobs.put(conn, present)
    with one.write() as conn:
        for blob in [*map(_blob, values), big]:
            one.blobs.put(conn, blob)
    with batch.write() as conn:
        batch.blobs.put_many(conn, [*map(_blob, values), big])
        pending = batch.blobs.pending_bytes()
    assert pending >= sum(b.stored_size for b in map(_blob, values[:-1])) + big.stored_size
    rows = ("select sha, codec, encoding, raw_size, stored_size, chunk_size, n_chunks, "
            "python_version, preview from blob order by sha")  # fmt: skip
    chunks = "select sha, seq, data from blob_chunk order by sha, seq"
    for sql in (rows, chunks):
        assert query(tmp_path / "one.db", sql) == query(tmp_path / "batch.db", sql)
    assert len(query(tmp_path / "batch.db", rows)) == 8  # 6 new small values + present + big
    for value in values:
        assert batch.load(_blob(value).sha) == value


@given(
    step=st.text(min_size=1, max_size=12),
    flow=st.text(min_size=1, max_size=12),
    code=st.text(max_size=30),
    env=st.text(max_size=30),
    inputs=st.binary(min_size=32, max_size=32).map(bytes.hex),
    position=st.lists(st.integers(min_value=0, max_value=10**9), max_size=4),
    is_join=st.booleans(),
)
def test_a_reuse_key_from_its_step_head_is_task_key(step, flow, code, env, inputs, position,
                                                   is_join):  # fmt: skip
    import hashlib

    text = key_text(key_head(code, env, flow, step), inputs, position, is_join)
    assert hashlib.sha256(text.encode()).hexdigest() == task_key(
        code, env, inputs, flow, step, position, is_join
    )


def test_task_row_values_read_at_once_are_the_general_rule():
    started = TaskRecord(3, "work", "12", "running", now_iso(), None, 0, 4,
                         [["start", "items", 10, 4, "4"]], parent_pks=[2])  # fmt: skip
    ended = TaskRecord(3, "work", "12", "failed", now_iso(), now_iso(), 1, 4, [],
                       "builtins.ValueError", "bad", "Traceback...", [2],
                       transition={"targets": ["join"], "foreach": None}, host="elsewhere")  # fmt: skip
    for record in (started, ended):
        assert writes._written(record) == TASK.values(record, TASK.written)
        assert writes._outcome(record) == TASK.values(record, TASK.outcome)


def test_stored_times_are_the_documented_text():
    stored = "%Y-%m-%dT%H:%M:%S.%fZ"
    rng = random.Random(24)
    for seconds in [0.0, 1.5, 1e9 + 0.000001, *(rng.uniform(0, 4e9) for _ in range(2000))]:
        assert stored_from_timestamp(seconds) == datetime.fromtimestamp(seconds, UTC).strftime(
            stored
        )
    assert datetime.strptime(now_iso(), stored)


def test_values_sqlite3_does_not_adapt_by_itself_are_bound_as_before(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("create table t(a, b, c)")
    conn.execute("insert into t values (?, ?, ?)", (None, b"\x00\x01", True))
    assert conn.execute("select typeof(a), typeof(b), typeof(c), c, hex(b) from t").fetchall() == [
        ("null", "blob", "integer", 1, "0001")
    ]
    conn.close()


@given(st.dictionaries(st.text(max_size=8), st.binary(min_size=32, max_size=32).map(bytes.hex)))
def test_an_outputs_digest_is_one_update_a_name_as_before(artifacts):
    import hashlib

    from ledgerflow.taskreuse import outputs_digest

    h = hashlib.sha256()
    for name in sorted(artifacts):
        h.update(f"{name}\x00{artifacts[name]}\x00".encode("utf-8", "surrogatepass"))
    assert outputs_digest(artifacts) == h.digest()
