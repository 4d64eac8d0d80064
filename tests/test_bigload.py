"""Big values in one pass: pickles whose big buffers (arrays' memory) are stored out of band
and loaded by decompressing each chunk straight into its final buffer, every byte checked
against the SHA-256 before anything is unpickled; values written in the classic layout (by
ledgerflow before the out-of-band layout) still load."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ledgerflow
from ledgerflow import codec, writes
from ledgerflow.blobstore import BlobStore
from ledgerflow.client import Run, namespace
from ledgerflow.exceptions import CorruptBlobError, LedgerflowError
from ledgerflow.ledger import Ledger
from ledgerflow.sharing import export_runs, import_ledger
from ledgerflow.upkeep import doctor

from .helpers import FLOWS, latest_run_id, query, run_flow

FLOW = FLOWS / "bigvalues_flow.py"
# A ledger written by ledgerflow b52d1f6 (before the out-of-band layout), LEDGERFLOW_CHUNK_SIZE
# 65536: `python tests/flows/bigvalues_flow.py --db tests/data/classic_blobs.db run` with that
# checkout first on PYTHONPATH.
CLASSIC = Path(__file__).resolve().parent / "data" / "classic_blobs.db"
CHUNK = 65536

UNPICKLED: list[object] = []  # what Recorder's __setstate__ saw, in this process


class Recorder:
    """Records every unpickling of itself (in UNPICKLED)."""

    def __init__(self, tag: str):
        self.tag = tag

    def __setstate__(self, state: dict) -> None:
        UNPICKLED.append(state)
        self.__dict__.update(state)


@pytest.fixture
def small_oob(monkeypatch):
    """Out-of-band from 64 bytes on, so small test values take the big-value path."""
    monkeypatch.setattr(codec, "OOB_FROM", 64)


def stored(ledger: Ledger, value: object, chunk_size: int = CHUNK) -> str:
    blob = codec.encode_blob(value, chunk_size)
    writes.store_blobs(ledger, [blob])
    return blob.sha


def chunks(db: Path, sha: str) -> list[tuple[int, bytes]]:
    return query(db, "select id, data from blob_chunk where sha = ? order by seq", (sha,))


def one_pass_only(monkeypatch) -> None:
    """Fail the test if a load falls back to the classic two passes."""

    def no_second_pass(self, meta):
        raise AssertionError("the classic two-pass path was taken")

    monkeypatch.setattr(BlobStore, "verify", no_second_pass)


# -- the layout ---------------------------------------------------------------------------------


def test_an_array_is_stored_out_of_band_and_loads_in_one_pass(db_path, monkeypatch):
    ledger = Ledger(db_path)
    value = {"noise": np.random.default_rng(1).random(400_000), "tag": Recorder("x")}
    sha = stored(ledger, value)
    # Its raw bytes start with the layout's magic; the array's 3.2 MB are 49 chunks of their
    # own, after the chunk holding the prefix and the pickle stream.
    encoding, raw = ledger.read_raw(sha)
    assert encoding == "pickle" and codec.is_oob(raw) and raw[:1] == b"\x80"
    assert codec.sha256(raw) == sha == codec.digest(value)
    assert query(db_path, "select n_chunks from blob where sha = ?", (sha,)) == [(1 + 49,)]
    one_pass_only(monkeypatch)
    UNPICKLED.clear()
    got = ledger.load(sha)
    assert got["noise"].tobytes() == value["noise"].tobytes() and got["noise"].flags.writeable
    assert got["tag"].tag == "x" and len(UNPICKLED) == 1


def test_a_value_without_big_buffers_keeps_the_classic_bytes(db_path):
    """Small values are written exactly as before: same bytes, same SHA (deduplicated with
    blobs of older runs)."""
    import cloudpickle

    for value in (np.arange(1000), {"a": {1, 2}}, b"x" * 3_000_000, bytearray(3_000_000)):
        blob = codec.encode_blob(value, CHUNK)
        classic = cloudpickle.dumps(value, protocol=codec.PICKLE_PROTOCOL)
        assert blob.sha == codec.sha256(classic) == codec.digest(value)


# -- one byte changed: refused, nothing unpickled -----------------------------------------------


def refresh(db: Path, row_id: int, data: bytes) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("update blob_chunk set data = ? where id = ?", (data, row_id))
    conn.close()


@pytest.mark.parametrize("which", ["stream", "first buffer chunk", "last chunk"])
@pytest.mark.parametrize("how", ["recompressed", "stored bytes"])
def test_one_altered_byte_is_refused_before_anything_is_unpickled(db_path, monkeypatch,
                                                                  which, how):  # fmt: skip
    ledger = Ledger(db_path)
    value = [Recorder("before"), np.random.default_rng(2).random(200_000), Recorder("after")]
    sha = stored(ledger, value)
    ledger.close()
    rows = chunks(db_path, sha)
    row_id, frame = rows[{"stream": 0, "first buffer chunk": 1, "last chunk": -1}[which]]
    if how == "recompressed":  # a valid zstd frame: only the SHA-256 can tell
        piece = bytearray(codec.decompress_chunk(frame, CHUNK))
        at = len(piece) - 5 if which == "stream" else len(piece) // 2
        piece[at] ^= 0x01
        altered = codec.compress_frame(bytes(piece))
    else:
        altered = bytearray(frame)
        altered[len(altered) // 2] ^= 0x01
        altered = bytes(altered)
    refresh(db_path, row_id, altered)
    Ledger.forget(db_path)
    ledger = Ledger(db_path)
    one_pass_only(monkeypatch)
    UNPICKLED.clear()
    with pytest.raises(CorruptBlobError, match=sha[:12]):
        ledger.load(sha)
    assert UNPICKLED == []  # refused before pickle.loads ran


def test_chunks_that_do_not_fit_the_layout_are_refused(db_path, monkeypatch):
    """The layout's sizes are not trusted: a prefix claiming other buffer sizes (even with
    its SHA recomputed, as anyone can) is refused before a byte is unpickled."""
    ledger = Ledger(db_path)
    sha = stored(ledger, [Recorder("x"), np.zeros(200_000)])
    encoding, raw = ledger.read_raw(sha)
    prefix, header, sizes = codec.oob_layout(raw, len(raw))
    forged = bytearray(raw)
    # Claim the stream is 8 bytes longer and the buffer 8 shorter: same total.
    forged[:prefix] = codec.oob_prefix(header + 8, [sizes[0] - 8])
    ledger.close()
    conn = sqlite3.connect(db_path)
    new = codec.sha256(bytes(forged))
    blob = codec.BlobWriter("pickle", CHUNK)
    blob.write(bytes(forged[: prefix + header]))
    blob.end_chunk()
    blob.write(bytes(forged[prefix + header :]))
    made = blob.finish()
    with conn:
        conn.execute("insert into blob(sha, codec, encoding, raw_size, stored_size, chunk_size,"
                     " n_chunks, created_at, preview) select ?, codec, encoding, raw_size,"
                     " stored_size, chunk_size, ?, created_at, '' from blob where sha = ?",
                     (new, made.n_chunks, sha))  # fmt: skip
        conn.executemany("insert into blob_chunk(sha, seq, data) values (?, ?, ?)",
                         [(new, i, c) for i, c in enumerate(made.chunks)])  # fmt: skip
    conn.close()
    Ledger.forget(db_path)
    UNPICKLED.clear()
    with pytest.raises(CorruptBlobError, match="do not fit its layout"):
        Ledger(db_path).load(new)
    assert UNPICKLED == []


# -- values written before the layout --------------------------------------------------------


def test_values_written_by_the_classic_code_load(tmp_path):
    """tests/data/classic_blobs.db was written by ledgerflow b52d1f6: its multi-chunk pickles
    (one cloudpickle stream each) load, through the Client API, as they were stored."""
    db = tmp_path / "classic.db"
    shutil.copy(CLASSIC, db)
    encodings = query(db, "select distinct b.encoding, b.n_chunks from artifact a join blob b "
                          "on b.sha = a.sha where a.name = 'noise'")  # fmt: skip
    assert encodings == [("pickle", encodings[0][1])] and encodings[0][1] > 1
    Ledger.open(db)  # a writer: migrates the file if the schema moved on since
    ledgerflow.trust(str(db))  # made elsewhere: its pickles load once trusted
    namespace(None)
    run = Run(f"BigValuesFlow/{latest_run_id(db, 'BigValuesFlow')}", ledger=db)
    _, raw = Ledger.open(db).read_raw(run["start"].task["noise"].sha)
    assert not codec.is_oob(raw)  # the classic layout, as written then
    expected = np.random.default_rng(7).random(20_000)  # run with --n 20000
    assert run["start"].task["noise"].data.tobytes() == expected.tobytes()
    assert run["end"].task["stats"].data["total"] == pytest.approx(float(expected.sum()))
    assert bytes(run["start"].task["payload"].data) == bytes(range(256)) * 1000


def test_a_classic_blob_stored_now_loads_and_verifies(db_path):
    """The classic layout, built as the code before did (one in-band cloudpickle stream)."""
    import cloudpickle

    ledger = Ledger(db_path)
    value = {"a": np.random.default_rng(3).random(100_000), "r": Recorder("c")}
    blob = codec.blob_from_raw("pickle", cloudpickle.dumps(value, protocol=5), CHUNK)
    writes.store_blobs(ledger, [blob])
    assert blob.n_chunks > 1
    got = ledger.load(blob.sha)
    assert got["a"].tobytes() == value["a"].tobytes() and got["r"].tag == "c"


# -- round trips ------------------------------------------------------------------------------

dtypes = st.sampled_from(["<f8", ">f4", "<i8", "u1", "?", "<c16", "<M8[s]", "<U3"])
arrays = hnp.arrays(dtypes, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40))


def views_of(a: np.ndarray) -> st.SearchStrategy[np.ndarray]:
    return st.sampled_from([a, a.T, a[::2], a[..., ::-1]])


values = st.one_of(
    arrays.flatmap(views_of),
    st.binary(max_size=3000),
    st.binary(max_size=3000).map(bytearray),
    st.lists(st.integers() | st.text(max_size=5), max_size=5).map(
        lambda xs: np.array(xs + [None], dtype=object)
    ),  # fmt: skip
    st.tuples(arrays, arrays, st.binary(max_size=200)),
)


def same_as_pickle(value: object, got: object) -> bool:
    """`got` is what a plain pickle round trip of `value` gives (numpy's own pickling turns
    a reversed big-endian view native, for one: that is not ours to change), and equal."""
    import pickle

    return same(pickle.loads(pickle.dumps(value, protocol=5)), got)


def same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        if not (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape):
            return False
        if a.dtype == object:
            return a.tolist() == b.tolist()
        return a.tobytes() == b.tobytes() and b.flags.writeable
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values)
def test_values_round_trip_exactly(small_oob, tmp_path, value):
    """Through the codec (raw bytes decoded) and the ledger (the one-pass load), with chunks
    of 1 KB so a buffer spans several."""
    blob = codec.encode_blob(value, 1024)
    raw = b"".join(codec.decompress_chunk(c, 1024) for c in blob.chunks)
    assert codec.sha256(raw) == blob.sha == codec.digest(value)
    assert same_as_pickle(value, codec.decode(blob.encoding, raw))
    db = tmp_path / "round.db"
    ledger = Ledger.open(db)
    writes.store_blobs(ledger, [codec.encode_blob(value, 1024)])
    assert same_as_pickle(value, ledger.load(blob.sha))


# -- through a run: export, import, doctor -------------------------------------------------------


@pytest.fixture
def big_run(db_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_CHUNK_SIZE", str(CHUNK))
    run_flow(FLOW, db=db_path)
    return f"BigValuesFlow/{latest_run_id(db_path, 'BigValuesFlow')}"


def noise_sha(db: Path) -> str:
    return query(db, "select a.sha from artifact a join task t on t.id = a.task_id "
                     "where a.name = 'noise' and t.step = 'start'")[0][0]  # fmt: skip


def test_a_run_stores_arrays_out_of_band_and_passes_them_on_unchanged(db_path, big_run):
    sha = noise_sha(db_path)
    _, raw = Ledger.open(db_path).read_raw(sha)
    assert codec.is_oob(raw)
    # middle read it and did not change it: the same blob, inherited (re-hashed, not stored).
    assert query(db_path, "select t.step, a.inherited from artifact a join task t on "
                          "t.id = a.task_id where a.name = 'noise' order by t.id") == [
        ("start", 0), ("middle", 1), ("end", 1)]  # fmt: skip
    namespace(None)
    run = Run(big_run, ledger=db_path)
    expected = np.random.default_rng(7).random(150_000)
    assert run["end"].task["noise"].data.tobytes() == expected.tobytes()
    assert run["end"].task["stats"].data["total"] == pytest.approx(float(expected.sum()))


def test_doctor_and_export_verify_out_of_band_blobs(db_path, big_run, tmp_path):
    assert doctor(Ledger.open(db_path)).problems == []
    out = tmp_path / "sent.db"
    export_runs([big_run], out, ledger=db_path)
    target = tmp_path / "mine.db"
    import_ledger(out, ledger=target)
    sha = noise_sha(db_path)
    got = Ledger.open(target).load(sha, before_unpickle=None)
    assert got.tobytes() == np.random.default_rng(7).random(150_000).tobytes()
    # One byte of one of the array's chunks changed (a valid frame): doctor names the blob,
    # export refuses to copy it.
    row_id, frame = chunks(db_path, sha)[3]
    piece = bytearray(codec.decompress_chunk(frame, CHUNK))
    piece[100] ^= 0x01
    Ledger.forget(db_path)
    refresh(db_path, row_id, codec.compress_frame(bytes(piece)))
    report = doctor(Ledger.open(db_path))
    assert any(sha[:12] in p and "does not match its SHA-256" in p for p in report.problems)
    with pytest.raises(LedgerflowError, match="nothing was written"):
        export_runs([big_run], tmp_path / "again.db", ledger=db_path)


@pytest.mark.parametrize(
    "value",
    [
        [b"x" * 5000, np.arange(20_000)],  # a long stream first: switches to the classic one
        [np.arange(20_000), b"x" * 5000],  # a big buffer, then a long stream: pickled again
    ],
    ids=["stream first", "buffer first"],
)
def test_a_long_pickle_stream_falls_back_to_the_classic_layout(db_path, monkeypatch, value):
    """A stream past OOB_HEADER_MAX is not held in memory: the value is stored in the classic
    layout, and digest() gives the SHA the store gives."""
    import cloudpickle

    monkeypatch.setattr(codec, "OOB_FROM", 64)
    monkeypatch.setattr(codec, "OOB_HEADER_MAX", 1000)
    blob = codec.encode_blob(value, 1024)
    assert blob.sha == codec.sha256(cloudpickle.dumps(value, protocol=5)) == codec.digest(value)
    ledger = Ledger(db_path)
    writes.store_blobs(ledger, [codec.encode_blob(value, 1024)])
    got = ledger.load(blob.sha)
    assert got[0] == value[0] if isinstance(value[0], bytes) else got[1] == value[1]
    assert all(np.array_equal(a, b) for a, b in zip(got, value))
