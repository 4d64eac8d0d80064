"""The ledger file: pragmas, migrations, blobs, dedup, chunking, and refusing bad files."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from ledgerflow import codec, writes
from ledgerflow.exceptions import CorruptBlobError, LedgerReadOnlyError, LedgerSchemaError
from ledgerflow.ledger import Ledger
from ledgerflow.location import resolve_ledger_path
from ledgerflow.records import ArtifactRecord, TaskRecord
from ledgerflow.schema import SCHEMA_VERSION

from .helpers import query

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def fresh(path: Path, **kw) -> Ledger:
    Ledger.forget(path)
    return Ledger(path, **kw)


def store_task(ledger: Ledger, run_pk: int, task_id: str, values: dict) -> int:
    blobs, arts = [], []
    for name, value in values.items():
        blob = codec.encode_blob(value, ledger.chunk_size)
        blobs.append(blob)
        arts.append(
            ArtifactRecord(
                name,
                blob.sha,
                blob.encoding,
                codec.type_name(value),
                blob.raw_size,
                codec.scalar_value(value),
            )
        )
    rec = TaskRecord(
        run_pk,
        "start",
        task_id,
        "succeeded",
        "2026-01-01T00:00:00.000000Z",
        "2026-01-01T00:00:01.000000Z",
        artifacts=arts,
        blobs=blobs,
    )
    return writes.record_tasks(ledger, [rec])[0]


def new_run(ledger: Ledger, run_id: str = "1") -> int:
    return writes.create_run(ledger, "F", run_id, params={}, user="u", code=None, script_name=None)


def test_new_ledger_has_pragmas_schema_and_identity(db_path):
    ledger = fresh(db_path)
    assert ledger.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert ledger.execute("pragma foreign_keys").fetchone()[0] == 1
    assert ledger.execute("pragma synchronous").fetchone()[0] == 1  # NORMAL
    assert ledger.execute("pragma busy_timeout").fetchone()[0] >= 1000
    assert ledger.execute("pragma user_version").fetchone()[0] == SCHEMA_VERSION
    assert len(ledger.ledger_id) == 32
    names = {r[0] for r in query(db_path, "select name from sqlite_master where type='view'")}
    assert {"runs", "tasks", "artifacts", "all_artifacts"} <= names


def test_same_value_twice_is_one_blob(db_path):
    ledger = fresh(db_path)
    run = new_run(ledger)
    big = list(range(100_000))
    store_task(ledger, run, "1", {"a": big, "b": big})
    store_task(ledger, run, "2", {"c": list(range(100_000))})
    assert query(db_path, "select count(*) from artifact")[0][0] == 3
    assert query(db_path, "select count(distinct sha), count(*) from blob")[0] == (1, 1)


def test_value_larger_than_two_chunks_is_split_and_round_trips(db_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_CHUNK_SIZE", "100000")
    ledger = fresh(db_path)
    value = os.urandom(250_000)
    store_task(ledger, new_run(ledger), "1", {"big": value})
    sha, n, raw_size = query(db_path, "select sha, n_chunks, raw_size from blob")[0]
    assert n == 3 and raw_size > 250_000
    chunks = query(
        db_path, "select seq, length(data), data from blob_chunk where sha=? order by seq", (sha,)
    )
    assert [c[0] for c in chunks] == [0, 1, 2]
    assert all(c[2].startswith(ZSTD_MAGIC) for c in chunks)  # blobs on disk are zstd frames
    assert fresh(db_path).load(sha) == value


@pytest.mark.parametrize("where", ["payload", "checksum"])
@pytest.mark.parametrize("value", [os.urandom(250_000), bytes(250_000)], ids=["random", "zeros"])
def test_a_flipped_byte_in_a_multi_chunk_blob_is_detected(db_path, monkeypatch, where, value):
    # Multi-chunk blobs are decompressed straight into the value's buffer and verified by
    # each zstd frame's checksum: a flipped byte must fail the load, never return bad data.
    monkeypatch.setenv("LEDGERFLOW_CHUNK_SIZE", "100000")
    ledger = fresh(db_path)
    store_task(ledger, new_run(ledger), "1", {"big": value})
    sha = query(db_path, "select sha from blob")[0][0]
    (chunk,) = query(db_path, "select data from blob_chunk where sha=? and seq=1", (sha,))[0]
    data = bytearray(chunk)
    data[len(data) // 2 if where == "payload" else -1] ^= 0x01
    ledger.close()
    Ledger.forget(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("update blob_chunk set data = ? where sha = ? and seq = 1", (bytes(data), sha))
    conn.commit()
    conn.close()
    with pytest.raises(CorruptBlobError, match="run `ledgerflow doctor`"):
        fresh(db_path).load(sha)
    Ledger.forget(db_path)
    with pytest.raises(CorruptBlobError, match="run `ledgerflow doctor`"):
        fresh(db_path).read_raw(sha)


def test_a_big_commit_is_checkpointed_in_the_background_into_the_file(db_path, tmp_path):
    # A commit adding more than BACKGROUND_CHECKPOINT_BYTES leaves copying its pages from the
    # WAL into the file to a background thread; once finish() returns, the file alone (as
    # copied by a user, without its -wal) holds the commit.
    import shutil

    from ledgerflow.writes import BACKGROUND_CHECKPOINT_BYTES

    ledger = fresh(db_path)
    value = os.urandom(BACKGROUND_CHECKPOINT_BYTES + 1)
    store_task(ledger, new_run(ledger), "1", {"big": value})
    assert ledger.checkpointer._thread is not None, "the background checkpoint was not asked for"
    ledger.checkpointer.finish()
    assert ledger.checkpointer._thread is None
    copy = tmp_path / "copy.db"
    shutil.copyfile(db_path, copy)  # the -wal file is left behind on purpose
    (sha,) = query(db_path, "select sha from blob")[0]
    assert fresh(copy, readonly=True).load(sha) == value


def test_blobs_on_disk_are_zstd_frames(db_path):
    ledger = fresh(db_path)
    store_task(ledger, new_run(ledger), "1", {"x": {"k": "v" * 1000}, "y": 3})
    for (data,) in query(db_path, "select data from blob_chunk"):
        assert data.startswith(ZSTD_MAGIC)


def test_future_schema_is_refused_with_a_clear_message(db_path):
    fresh(db_path).close()
    Ledger.forget(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("pragma user_version = 99")
    conn.close()
    with pytest.raises(LedgerSchemaError, match=r"schema 99, newer than .* upgrade ledgerflow"):
        Ledger(db_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("hello, this is not a database" * 100)
    with pytest.raises(LedgerSchemaError, match="not a ledgerflow ledger"):
        Ledger(bad)


def test_someone_elses_sqlite_database_is_refused_untouched(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table customers(id)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerSchemaError, match="not a ledgerflow ledger.*customers"):
        Ledger(other)
    assert query(other, "select name from sqlite_master") == [("customers",)]


def test_corrupted_blob_is_detected_on_load(db_path):
    ledger = fresh(db_path)
    store_task(ledger, new_run(ledger), "1", {"x": "precious " * 100})
    sha = query(db_path, "select sha from blob")[0][0]
    other = codec.blob_from_raw(codec.PICKLE, b'"tampered"', codec.DEFAULT_CHUNK_SIZE).chunks[0]
    conn = sqlite3.connect(db_path)
    conn.execute("update blob_chunk set data = ? where sha = ?", (other, sha))
    conn.commit()
    conn.close()
    with pytest.raises(CorruptBlobError, match="does not match its SHA-256|cannot be decompressed"):
        fresh(db_path).load(sha)


def test_read_only_ledger_reads_and_refuses_writes(db_path):
    ledger = fresh(db_path)
    store_task(ledger, new_run(ledger), "1", {"x": 41})
    sha = query(db_path, "select sha from blob")[0][0]
    ledger.close()
    ro = fresh(db_path, readonly=True)
    assert ro.load(sha) == 41
    with pytest.raises(LedgerReadOnlyError, match="read-only"):
        new_run(ro, "2")


def _open_and_count(path: str, barrier, out) -> None:
    barrier.wait()
    ledger = Ledger(path)
    writes.create_run(
        ledger, "F", str(os.getpid()), params={}, user="u", code=None, script_name=None
    )
    out.put(ledger.execute("pragma user_version").fetchone()[0])


@pytest.mark.parametrize("round_", range(5))  # the race is narrow: try it several times
def test_four_processes_creating_the_same_ledger_agree_on_one_schema(tmp_path, round_):
    path = str(tmp_path / "race.db")
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_open_and_count, args=(path, barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(out.get() for _ in procs) == [SCHEMA_VERSION] * 4
    tables = query(Path(path), "select name from sqlite_master where type='table' order by name")
    assert len(tables) == len(set(tables))
    assert query(Path(path), "select count(*) from run")[0][0] == 4
    assert query(Path(path), "select count(*) from meta where key='ledger_id'")[0][0] == 1


def test_location_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("LEDGERFLOW_DB")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert resolve_ledger_path() == nested / "ledgerflow.db"  # nothing yet: a new one here
    (tmp_path / "ledgerflow.db").touch()
    assert resolve_ledger_path() == tmp_path / "ledgerflow.db"  # nearest upwards
    monkeypatch.setenv("LEDGERFLOW_DB", str(tmp_path / "env.db"))
    assert resolve_ledger_path() == tmp_path / "env.db"
    assert resolve_ledger_path(tmp_path / "x.db") == tmp_path / "x.db"


def test_missing_folder_gives_a_clear_error(tmp_path):
    from ledgerflow.exceptions import LedgerError

    with pytest.raises(LedgerError, match="folder .* does not exist"):
        Ledger(tmp_path / "nope" / "l.db")


def test_a_process_ending_right_after_a_big_commit_leaves_the_file_whole(db_path, tmp_path):
    # The background checkpoint is waited for at exit, then a last one runs: the file
    # alone holds the blob.
    import shutil
    import subprocess
    import sys

    code = (
        "import os, sys\nfrom ledgerflow import codec\nfrom ledgerflow.ledger import Ledger\n"
        "ledger = Ledger.open(sys.argv[1])\nblob = codec.encode_blob(os.urandom(9 << 20))\n"
        "with ledger.write() as conn:\n    ledger.blobs.put(conn, blob)\nprint(blob.sha)\n"
    )
    sha = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True,
                         text=True, check=True).stdout.strip()  # fmt: skip
    # (The -wal file stays, fully copied: deleting it would lock readers out; see connections.py.)
    copy = tmp_path / "copy.db"
    shutil.copyfile(db_path, copy)
    assert query(
        copy, "select count(*), sum(length(data)) > 9000000 from blob_chunk where sha = ?", (sha,)
    ) == [(1, 1)]


def test_a_transaction_left_open_by_an_interrupted_write_does_not_block_the_next(db_path):
    # Ctrl-C landing between a write's BEGIN and its body leaves the transaction open; the
    # next write on that connection rolls it back instead of failing.
    ledger = fresh(db_path)
    ledger.conn.execute("BEGIN IMMEDIATE")
    ledger.conn.execute("insert into meta(key, value) values ('half', 'written')")
    with ledger.write() as conn:
        conn.execute("insert into meta(key, value) values ('whole', 'written')")
    assert query(db_path, "select key from meta where value = 'written'") == [("whole",)]


def test_a_thread_opening_a_deleted_ledger_gets_a_clear_error_and_no_new_file(db_path):
    # A task thread that opens its connection after the file was deleted must not create a
    # new, empty ledger in its place: it gets the same one-line error a write would.
    import threading

    ledger = fresh(db_path)
    store_task(ledger, new_run(ledger), "1", {"x": 1})
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{db_path}{suffix}"):
            os.unlink(f"{db_path}{suffix}")
    errors = []

    def reader():
        try:
            ledger.execute("select count(*) from run").fetchone()
        except Exception as e:  # noqa: BLE001 - the error is what is checked
            errors.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "was deleted or moved while in use" in str(errors[0])
    assert not db_path.exists()


def test_a_ledger_path_with_uri_characters_works(tmp_path):
    # Connections use file: URIs; '?', '#' and '%' in a path must stay part of the name.
    path = tmp_path / "odd ?name#with%25.db"
    ledger = fresh(path)
    store_task(ledger, new_run(ledger), "1", {"x": 41})
    (sha,) = query(path, "select sha from blob")[0]
    ledger.close()
    Ledger.forget(path)
    name = "odd ?name#with%25.db"  # and its WAL files (kept on close), nothing else
    assert {p.name for p in tmp_path.iterdir()} <= {name, f"{name}-wal", f"{name}-shm"}
    assert fresh(path, readonly=True).load(sha) == 41
