"""Content-addressed blobs in a ledger: storing them once per SHA-256, and reading them back
verified.

A blob is a value's raw encoding (JSON text or a pickle), split into chunks, each chunk one
zstd frame that declares its size, stored in `blob_chunk` rows; its `blob` row records the
encoding, sizes and chunk count. A ledger may come from someone else, so every read
assumes the rows lie:

- the `blob` row is checked (sizes are integers, chunk count and size within what ledgerflow
  writes, frames declaring exactly `raw_size` bytes between them) before a byte is
  allocated for the value — a 32 KB frame cannot claim a gigabyte;
- every byte is checked against the SHA-256 before anything decodes it: small and JSON
  values are assembled into one buffer, hashed, then decoded; a large pickle in the
  out-of-band layout (codec.py) is decompressed chunk by chunk straight into its final
  buffers while another thread hashes them, and unpickled from them once the SHA-256
  matched (one pass); a large pickle in the classic layout is hashed in a first streaming
  pass and unpickled in a second; all inside one read transaction (one snapshot of the
  file), so memory stays near one copy of the value;
- the encoding decoded is the one on the blob row itself, and the caller's `before_unpickle`
  hook (the trust check) runs on it — never on a label kept elsewhere.

`BlobStore` is handed the ledger's per-thread connections; `Ledger` delegates to it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import codec
from .clock import now_iso
from .exceptions import CorruptBlobError
from .preview import storable_text

# Blobs from this size on are read by incremental blob I/O rather than selected.
BLOB_IO_FROM = 1024 * 1024
# BlobStore.prefetch: values up to this size, in queries of this many, this much in all.
PREFETCH_ITEM_BYTES = 64 * 1024
PREFETCH_BATCH = 512
PREFETCH_BYTES = 16 * 1024 * 1024
KNOWN_SHAS_MAX = 4096  # about 0.5 MB of SHAs
# The largest chunk a ledger may declare: 4x the default, the most LEDGERFLOW_CHUNK_SIZE may
# ask for. A blob row claiming bigger chunks is damaged or hostile, never ours.
MAX_CHUNK_SIZE = 4 * codec.DEFAULT_CHUNK_SIZE
# What a blob's bytes are: codec's encodings, and the raw bytes / UTF-8 text of S3 objects.
BLOB_ENCODINGS = (*codec.ENCODINGS, "bytes", "text")
# Bytes of a stored chunk that always hold its zstd frame header (at most 18 bytes).
_HEADER_BYTES = 32


_INSERT_BLOB = (
    "insert or ignore into blob(sha, codec, encoding, raw_size, stored_size, chunk_size, "
    "n_chunks, python_version, created_at, preview) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class RawCache:
    """Recently used raw blob bytes by SHA, bounded in total size (thread-safe LRU). Holds
    only bytes already verified against their SHA."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_item: int = 1024 * 1024):
        self.max_bytes, self.max_item = max_bytes, max_item
        self._items: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, sha: str) -> tuple[str, bytes] | None:
        with self._lock:
            item = self._items.get(sha)
            if item is not None:
                self._items.move_to_end(sha)
            return item

    def put(self, sha: str, encoding: str, raw: bytes) -> None:
        if len(raw) > self.max_item:
            return
        with self._lock:
            if sha in self._items:
                return
            self._items[sha] = (encoding, raw)
            self._size += len(raw)
            while self._size > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self._size -= len(old)


def decode_verified(sha: str, encoding: str, raw: Any, before_unpickle: Callable[[], None] | None,
                    where: object) -> Any:  # fmt: skip
    """The value of a blob's raw bytes, already verified against its SHA-256 (`where`: the
    file they came from, for the error)."""
    if encoding == codec.PICKLE:
        if before_unpickle is not None:
            before_unpickle()
        return codec.decode(encoding, raw)
    try:
        if encoding == "bytes":
            return bytes(raw)
        if encoding == "text":
            return bytes(raw).decode("utf-8")
        return codec.decode(encoding, raw)
    except (ValueError, RecursionError) as e:  # verified bytes, yet not JSON: not ours
        raise CorruptBlobError(f"blob {sha[:12]} in {where} is labelled {encoding} but is not "
                               f"({e}) (the file is damaged); run `ledgerflow doctor`") from None  # fmt: skip


class BlobMeta:
    """A blob row, checked for sense (see BlobStore.meta)."""

    # Not a @struct (the record style elsewhere): read per blob, so __slots__ and no checks.

    __slots__ = ("sha", "encoding", "raw_size", "n_chunks", "chunk_size")

    def __init__(self, sha: str, encoding: str, raw_size: int, n_chunks: int,
                 chunk_size: int):  # fmt: skip
        self.sha, self.encoding, self.raw_size = sha, encoding, raw_size
        self.n_chunks, self.chunk_size = n_chunks, chunk_size


def check_meta(sha: Any, encoding: Any, raw_size: Any, n_chunks: Any, chunk_size: Any,
               codec_name: Any = codec.CODEC) -> str | None:  # fmt: skip
    """Why a blob row cannot be ours (None if it can): the checks every read and every
    import makes before trusting its numbers."""
    if not isinstance(sha, str) or len(sha) != 64 or sha.strip("0123456789abcdef"):
        return "has no valid SHA-256"
    if codec_name != codec.CODEC:
        return f"uses codec {codec_name!r}, not {codec.CODEC!r}"
    if encoding not in BLOB_ENCODINGS:
        return f"has an unknown encoding {encoding!r}"
    for name, value in (("raw_size", raw_size), ("n_chunks", n_chunks),
                        ("chunk_size", chunk_size)):  # fmt: skip
        if type(value) is not int or value < 0:
            return f"has a {name} of {value!r}, not a size"
    if n_chunks < 1 or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        return f"declares {n_chunks} chunk(s) of {chunk_size} bytes"
    if raw_size > n_chunks * chunk_size:
        return f"claims {raw_size} bytes, more than its {n_chunks} chunk(s) can hold"
    return None


def check_frames_declare(sizes: list[int], meta: BlobMeta) -> str | None:
    """Why the chunks' declared sizes do not add up to the blob (None if they do)."""
    if len(sizes) != meta.n_chunks:
        return f"has {len(sizes)} of its {meta.n_chunks} chunks"
    for seq, size in enumerate(sizes):
        if size < 0:
            return f"has a chunk {seq} that does not declare its size"
        if size > meta.chunk_size:
            return f"has a chunk {seq} declaring {size} bytes, more than {meta.chunk_size}"
    if sum(sizes) != meta.raw_size:
        return f"has chunks declaring {sum(sizes)} bytes in all, not {meta.raw_size}"
    return None


def declared_size(frame: Any) -> int:
    """The size a stored chunk's zstd frame declares; -1 when it does not or is no frame."""
    import zstandard

    if not isinstance(frame, (bytes, bytearray, memoryview)):
        return -1
    try:
        return int(zstandard.frame_content_size(bytes(frame[:_HEADER_BYTES])))
    except zstandard.ZstdError:
        return -1


class BlobStore:
    """The blobs of one ledger file, read and written through the ledger's connections."""

    def __init__(self, path: Path, connection: Callable[[], sqlite3.Connection],
                 chunk_size: int):  # fmt: skip
        self.path = path
        self._connection = connection
        self.chunk_size = chunk_size
        self.cache = RawCache()
        # SHAs committed to this file by this process: their blobs need not be built again.
        # A hint, bounded (remember()), so a long or wide run does not grow with it.
        self.known_shas: set[str] = set()
        self._pending = threading.local()  # blob bytes the open write transaction adds

    # -- writing -------------------------------------------------------------------------

    def reset_pending(self) -> None:
        self._pending.n = 0

    def pending_bytes(self) -> int:
        """Blob bytes added by this thread's open write transaction."""
        return getattr(self._pending, "n", 0)

    def put(self, conn: sqlite3.Connection, blob: codec.EncodedBlob) -> bool:
        """Store a blob unless its SHA is already present. Call inside a write. True if new."""
        cur = conn.execute(_INSERT_BLOB, self._row(blob, now_iso()))
        if cur.rowcount == 0:
            return False
        self._pending.n = self.pending_bytes() + blob.stored_size
        # One chunk in memory at a time, whether the chunks are in memory or spilled to disk.
        if blob.raw_size < BLOB_IO_FROM:
            conn.executemany(
                "insert into blob_chunk(sha, seq, data) values (?, ?, ?)",
                ((blob.sha, seq, chunk) for seq, chunk in enumerate(blob.iter_chunks())),
            )
            return True
        # Large chunks go in by incremental blob I/O: a zeroblob row, then its bytes written
        # in place (188 MB: 0.33 s, against 0.41 s binding each chunk as a value).
        for seq, chunk in enumerate(blob.iter_chunks()):
            row_id = conn.execute(
                "insert into blob_chunk(sha, seq, data) values (?, ?, zeroblob(?))",
                (blob.sha, seq, len(chunk)),
            ).lastrowid
            with conn.blobopen("blob_chunk", "data", int(row_id or 0)) as target:
                target.write(chunk)
        return True

    def put_many(self, conn: sqlite3.Connection, blobs: list[codec.EncodedBlob]) -> None:
        """Store blobs unless their SHAs are present, as `put` does one by one; those of one
        small chunk (a task's usual values) in two statements for them all. Inside a write."""
        small: list[codec.EncodedBlob] = []
        rest: list[codec.EncodedBlob] = []
        for blob in blobs:
            one = blob.n_chunks == 1 and blob.frames and blob.raw_size < BLOB_IO_FROM
            (small if one else rest).append(blob)
        if len(small) < 2:
            small, rest = [], blobs
        for blob in rest:
            self.put(conn, blob)
        if not small:
            return
        now = now_iso()
        added = conn.executemany(_INSERT_BLOB, [self._row(b, now) for b in small]).rowcount
        # Every blob has a chunk 0: where the blob row was there already, so is its chunk,
        # and the insert leaves it be (the unique index on (sha, seq) ignores this one).
        conn.executemany("insert or ignore into blob_chunk(sha, seq, data) values (?, 0, ?)",
                         [(b.sha, b.frames[0]) for b in small if b.frames])  # fmt: skip
        # The bytes this transaction adds (for its checkpoint): exact when every row was new,
        # else an upper bound (which of them were present, executemany does not say).
        if added:
            self._pending.n = self.pending_bytes() + sum(b.stored_size for b in small)

    def _row(self, blob: codec.EncodedBlob, now: str) -> tuple[Any, ...]:
        return (blob.sha, codec.CODEC, blob.encoding, blob.raw_size, blob.stored_size,
                self.chunk_size, blob.n_chunks,
                codec.PYTHON_VERSION if blob.encoding == codec.PICKLE else None, now,
                storable_text(blob.preview))  # fmt: skip

    def remember(self, shas: Iterable[str]) -> None:
        """Note SHAs just committed. Past KNOWN_SHAS_MAX the hint starts over: forgetting
        costs at most building a blob again, which the insert then ignores."""
        self.known_shas.update(shas)
        if len(self.known_shas) > KNOWN_SHAS_MAX:
            self.known_shas.clear()

    def knows(self, sha: str) -> bool:
        """True if this process has seen the blob committed (cheap, no query)."""
        return sha in self.known_shas

    def forget_known(self) -> None:
        """After blobs were deleted (gc): stop assuming any SHA is present."""
        self.known_shas.clear()

    # -- reading -------------------------------------------------------------------------

    def meta(self, sha: str) -> BlobMeta:
        """The blob's row, refused (CorruptBlobError) when its numbers cannot be ours."""
        row = (
            self._connection()
            .execute(
                "select encoding, raw_size, n_chunks, chunk_size, codec from blob where sha = ?",
                (sha,),
            )
            .fetchone()
        )
        if row is None:
            raise CorruptBlobError(
                f"blob {sha[:12]} is missing from {self.path}; run `ledgerflow doctor`"
            )
        why = check_meta(sha, row[0], row[1], row[2], row[3], row[4])
        if why:
            raise self._damaged(sha, why)
        return BlobMeta(sha, row[0], row[1], row[2], row[3])

    def read_raw(self, sha: str) -> tuple[str, bytes | bytearray]:
        """(encoding, raw bytes) of a blob, verified against its SHA-256. Large blobs are
        assembled chunk by chunk into one buffer (a bytearray)."""
        cached = self.cache.get(sha)
        if cached is not None:
            return cached
        with self._snapshot():
            return self._read_raw(self.meta(sha))

    def load(self, sha: str, before_unpickle: Callable[[], None] | None = None) -> Any:
        """The value stored under a SHA, as a fresh object. `before_unpickle` runs first when
        the blob itself is a pickle (and may raise to refuse it)."""
        cached = self.cache.get(sha)
        if cached is not None:
            return self._decode(sha, *cached, before_unpickle)
        with self._snapshot():
            meta = self.meta(sha)
            if meta.encoding == codec.PICKLE and meta.n_chunks > 1:
                if before_unpickle is not None:
                    before_unpickle()
                loaded = self._load_out_of_band(meta)
                if loaded is not None:
                    return loaded[0]
                # The classic layout (one pickle stream) cannot be unpickled before every
                # byte is hashed, nor kept whole: two passes.
                self.verify(meta)  # first pass: every byte hashed, none kept
                # Second pass, same snapshot: unpickled as it decompresses, about one copy
                # of the value in memory.
                import pickle

                return self._stream(meta, pickle.load, "unpickled")
            encoding, raw = self._read_raw(meta)
        return self._decode(sha, encoding, raw, before_unpickle)

    def _load_out_of_band(self, meta: BlobMeta) -> tuple[Any] | None:
        """(value,) of a pickle in the out-of-band layout (see codec), in one pass: each
        chunk decompressed by the background threads straight into its final buffer, hashed
        in order by another thread, and `pickle.loads(header, buffers=...)` called only once
        the SHA-256 matched. None for a blob in the classic layout (nothing read but the
        start of its first chunk)."""
        sizes = self._declared_sizes(meta)
        frames = self._frames(meta, handles=True)
        first = _read_whole(next(frames))
        try:
            peek = codec.peek_chunk(first, len(codec.OOB_MAGIC))
        except Exception as e:  # noqa: BLE001 - zstd errors too
            raise self._damaged(meta.sha, f"cannot be read ({type(e).__name__}: {e})") from None
        if not codec.is_oob(peek):
            return None
        try:
            head0 = codec.decompress_chunk(first, sizes[0])
            prefix, header, buffer_sizes = codec.oob_layout(head0, meta.raw_size)
        except Exception as e:  # noqa: BLE001 - a layout that is not ours is damage
            raise self._damaged(meta.sha, f"has an unreadable layout ({type(e).__name__}: "
                                          f"{e})") from None  # fmt: skip
        try:
            head = bytearray(prefix + header)
            targets = [codec.new_buffer(n) for n in buffer_sizes]
        except MemoryError:
            raise self._damaged(meta.sha, f"claims {meta.raw_size} bytes, more than fit in "
                                          "memory") from None  # fmt: skip
        places = _places(sizes, [memoryview(head), *(memoryview(t).cast("B") for t in targets)])
        if places is None:
            raise self._damaged(meta.sha, "has chunks that do not fit its layout")
        hasher = codec.ParallelHasher()
        jobs: list[Any] = []
        try:
            places[0][:] = head0
            hasher.feed(places[0])
            for place, frame in zip(places[1:], frames):
                job = codec.background().submit(_decompress_from, frame, place)
                jobs.append(job)
                hasher.feed(place, after=job)
                while len(jobs) > _IN_FLIGHT:  # each holds its compressed frame
                    jobs.pop(0).result()
            codec.wait_all(jobs)
            jobs = []
            sha = hasher.hexdigest()
        except CorruptBlobError:
            raise
        except Exception as e:  # noqa: BLE001 - zstd errors too: any failure is a damaged blob
            raise self._damaged(meta.sha, f"cannot be read ({type(e).__name__}: {e})") from None
        finally:
            _quietly_wait(jobs)  # no thread writes into the buffers once this returns
            hasher.close()
        if sha != meta.sha:
            raise self._damaged(meta.sha, "does not match its SHA-256")
        import pickle

        # Verified: only now is any of it unpickled. The arrays keep the buffers, no copy.
        return (pickle.loads(memoryview(head)[prefix:], buffers=targets),)

    def verify(self, meta: BlobMeta) -> None:
        """Decompress and hash the whole blob, keeping nothing; CorruptBlobError if any
        chunk is missing or damaged or the bytes do not match the SHA-256."""
        sizes = self._declared_sizes(meta)
        hasher = codec.new_sha256(meta.raw_size)
        seen = 0
        try:
            for seq, frame in enumerate(self._frames(meta)):
                piece = codec.decompress_chunk(frame, sizes[seq])
                if len(piece) != sizes[seq]:
                    raise ValueError(f"chunk {seq} holds {len(piece)} bytes, not {sizes[seq]}")
                hasher.update(piece)
                seen += len(piece)
        except CorruptBlobError:
            raise
        except Exception as e:  # noqa: BLE001 - zstd errors too: any failure is a damaged blob
            raise self._damaged(meta.sha, f"cannot be read ({type(e).__name__}: {e})") from None
        if seen != meta.raw_size or hasher.hexdigest() != meta.sha:
            raise self._damaged(meta.sha, "does not match its SHA-256")

    def _decode(self, sha: str, encoding: str, raw: Any,
                before_unpickle: Callable[[], None] | None) -> Any:  # fmt: skip
        return decode_verified(sha, encoding, raw, before_unpickle, self.path)

    def _read_raw(self, meta: BlobMeta) -> tuple[str, bytes | bytearray]:
        self._declared_sizes(meta)  # before allocating raw_size bytes
        try:
            out = bytearray(meta.raw_size)
        except MemoryError:
            raise self._damaged(meta.sha, f"claims {meta.raw_size} bytes, more than fit in "
                                          "memory") from None  # fmt: skip
        # Decompressed in parallel straight into the buffer, then hashed once, before
        # anything decodes it.
        self._stream(meta, lambda reader: reader.readinto(out), "decompressed")
        if codec.sha256(memoryview(out)) != meta.sha:
            raise self._damaged(meta.sha, "does not match its SHA-256")
        if meta.n_chunks > 1:
            return meta.encoding, out
        raw = bytes(out)
        self.cache.put(meta.sha, meta.encoding, raw)
        return meta.encoding, raw

    def _stream(self, meta: BlobMeta, consume: Callable[[codec.ChunkReader], Any],
                verb: str) -> Any:  # fmt: skip
        """consume(reader) over the blob's chunks; then check it read exactly the blob."""
        reader = codec.ChunkReader(self._frames(meta), meta.raw_size, meta.chunk_size,
                                   hash_sha=False)  # fmt: skip
        try:
            result = consume(reader)
            reader.sha_after_draining()
        except CorruptBlobError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure reading a blob means it is damaged
            raise self._damaged(meta.sha, f"cannot be {verb} ({type(e).__name__}: {e})") from None
        if reader.consumed != meta.raw_size:
            raise self._damaged(meta.sha, f"holds {reader.consumed} bytes, not {meta.raw_size}")
        return result

    def _declared_sizes(self, meta: BlobMeta) -> list[int]:
        """Each chunk's declared size, read from its frame header only; CorruptBlobError
        unless they add up to the blob (so no read allocates what the frames do not hold)."""
        conn = self._connection()
        if meta.raw_size < BLOB_IO_FROM:
            rows = conn.execute(
                "select seq, substr(data, 1, ?) from blob_chunk where sha = ? order by seq",
                (_HEADER_BYTES, meta.sha),
            ).fetchall()
        else:
            rows = []
            for seq, row_id in conn.execute(
                "select seq, id from blob_chunk where sha = ? order by seq", (meta.sha,)
            ).fetchall():
                with conn.blobopen("blob_chunk", "data", row_id, readonly=True) as chunk:
                    rows.append((seq, chunk.read(_HEADER_BYTES)))
        if [seq for seq, _ in rows] != list(range(len(rows))):
            raise self._damaged(meta.sha, "has gaps in its chunk numbers")
        sizes = [declared_size(head) for _, head in rows]
        why = check_frames_declare(sizes, meta)
        if why:
            raise self._damaged(meta.sha, f"cannot be decompressed: it {why}")
        return sizes

    def _frames(self, meta: BlobMeta, handles: bool = False) -> Iterator[Any]:
        """The blob's stored chunks in order, fetched one at a time. Large ones are read by
        incremental blob I/O: measured here, 188 MB of 16 MB chunks in 0.05 s, against 0.25 s
        selecting them as values (SQLite walks each chunk's overflow pages to build it).
        With `handles`, a large blob's chunks come as open sqlite3.Blob handles, for the
        caller to read from (zstd reads one in small pieces: no 16 MB bytes made, each of
        whose fresh pages costs a fault, ~13 ms a chunk here) and close."""
        conn = self._connection()
        sha, n_chunks = meta.sha, meta.n_chunks
        if meta.raw_size < BLOB_IO_FROM:
            for seq in range(n_chunks):
                row = conn.execute(
                    "select data from blob_chunk where sha = ? and seq = ?", (sha, seq)
                ).fetchone()
                if row is None:
                    raise self._missing_chunk(sha, seq, n_chunks)
                if not isinstance(row[0], bytes):
                    raise self._damaged(sha, f"has a chunk {seq} that is not bytes")
                yield row[0]
            return
        ids = dict(conn.execute("select seq, id from blob_chunk where sha = ?", (sha,)))
        for seq in range(n_chunks):
            try:
                chunk = conn.blobopen("blob_chunk", "data", ids[seq], readonly=True)
                if not handles:
                    with chunk:
                        data = chunk.read()
            except (KeyError, sqlite3.OperationalError):  # gone, e.g. removed meanwhile
                raise self._missing_chunk(sha, seq, n_chunks) from None
            yield chunk if handles else data

    def _snapshot(self) -> Any:
        """A read transaction on this thread's connection, so that every query of one read
        sees the same file (a blob verified is the blob decoded)."""
        return _ReadSnapshot(self._connection())

    def _missing_chunk(self, sha: str, seq: int, n_chunks: int) -> CorruptBlobError:
        return CorruptBlobError(
            f"blob {sha[:12]} in {self.path} lacks chunk {seq} of {n_chunks}; "
            "run `ledgerflow doctor`"
        )

    def _damaged(self, sha: str, why: str) -> CorruptBlobError:
        return CorruptBlobError(
            f"blob {sha[:12]} in {self.path} {why} (the file is damaged); run `ledgerflow doctor`"
        )

    def prefetch(self, shas: Iterable[str], max_bytes: int = PREFETCH_BYTES) -> int:
        """Read the small one-chunk blobs among `shas` into the cache, in one query for
        up to PREFETCH_BATCH of them: a join reading one artifact of its 10,000 inputs
        then makes a few queries, not five a value. Each is checked as a load checks it
        (its row, its frame's declared size, its SHA-256) before it is kept; one that fails
        is left out, and its own load reports it. Stops past `max_bytes` of raw bytes.
        Returns how many it kept."""
        import json

        wanted = [sha for sha in dict.fromkeys(shas) if self.cache.get(sha) is None]
        kept = total = 0
        conn = self._connection()
        with self._snapshot():
            for start in range(0, len(wanted), PREFETCH_BATCH):
                rows = conn.execute(
                    "select b.sha, b.encoding, b.raw_size, b.n_chunks, b.chunk_size, b.codec,"
                    " c.data from blob b join blob_chunk c on c.sha = b.sha and c.seq = 0"
                    " where b.sha in (select value from json_each(?))"
                    " and b.n_chunks = 1 and b.raw_size <= ? and not exists (select 1 from"
                    " blob_chunk o where o.sha = b.sha and o.seq <> 0)",
                    (json.dumps(wanted[start : start + PREFETCH_BATCH]), PREFETCH_ITEM_BYTES),
                )
                for sha, encoding, raw_size, n_chunks, chunk_size, codec_name, frame in rows:
                    raw = _verified_small(sha, encoding, raw_size, n_chunks, chunk_size,
                                          codec_name, frame)  # fmt: skip
                    if raw is None:
                        continue
                    self.cache.put(sha, encoding, raw)
                    kept, total = kept + 1, total + raw_size
                    if total >= max_bytes:
                        return kept
        return kept


def _verified_small(sha: Any, encoding: Any, raw_size: Any, n_chunks: Any, chunk_size: Any,
                    codec_name: Any, frame: Any) -> bytes | None:  # fmt: skip
    """A one-chunk blob's raw bytes, checked as BlobStore.load checks them; None if any check
    fails (the caller's own load of it then says why)."""
    if check_meta(sha, encoding, raw_size, n_chunks, chunk_size, codec_name) is not None:
        return None
    if declared_size(frame) != raw_size:
        return None
    try:
        raw = codec.decompress_chunk(frame, raw_size)
    except Exception:  # noqa: BLE001 - zstd's errors too: a damaged frame, reported by its load
        return None
    if len(raw) != raw_size or codec.sha256(raw) != sha:
        return None
    return raw


_IN_FLIGHT = 4  # chunks decompressing at once in a one-pass load


def _places(sizes: list[int], regions: list[memoryview]) -> list[memoryview] | None:
    """Where each chunk goes: consecutive pieces of the regions (the out-of-band layout's
    prefix and stream, then each buffer), every chunk inside one region and every region
    filled; None when the chunks' declared sizes do not fit so."""
    places, r, at = [], 0, 0
    for size in sizes:
        while r < len(regions) and at == len(regions[r]):
            r, at = r + 1, 0
        if r == len(regions) or at + size > len(regions[r]):
            return None
        places.append(regions[r][at : at + size])
        at += size
    while r < len(regions) and at == len(regions[r]):
        r, at = r + 1, 0
    return places if r == len(regions) else None


def _read_whole(frame: Any) -> bytes:
    """A chunk's bytes, from bytes or an open handle (then closed)."""
    if isinstance(frame, bytes):
        return frame
    with frame:
        return bytes(frame.read())


def _decompress_from(frame: Any, place: memoryview) -> None:
    """Decompress a chunk (bytes, or an open handle, then closed) straight into place."""
    try:
        codec.decompress_into(frame, place)
    finally:
        if not isinstance(frame, bytes):
            frame.close()


def _quietly_wait(jobs: list[Any]) -> None:
    for job in jobs:
        with contextlib.suppress(BaseException):
            job.result()


class _ReadSnapshot:
    """BEGIN ... COMMIT around a read, unless a transaction is already open."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.began = False

    def __enter__(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
            self.began = True

    def __exit__(self, *exc: object) -> None:
        if self.began and self.conn.in_transaction:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                pass
