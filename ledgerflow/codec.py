"""Values to stored bytes and back. Pure functions: no I/O, no database.

value --encode--> raw bytes --SHA-256--> sha
raw bytes --split into chunks--> each chunk a zstd frame (what the ledger stores)

Two encodings:
- ``json``: None, bool, int, finite float, str and lists/dicts of them whose JSON round
  trip is exact. Loading them never unpickles, so they are safe to load from any ledger.
- ``pickle``: everything else, with cloudpickle at protocol 5. Loading runs code.

The SHA covers the raw encoded bytes, so identical values are stored once. Chunks are
independent zstd frames with their content size recorded, so a chunk decompresses with a
known bound (a guard against decompression bombs in files received from others).

A pickle's raw bytes have one of two layouts:
- classic: one cloudpickle stream, its buffers in-band (every value before out-of-band
  layouts existed, and still every value without a buffer of OOB_FROM bytes or more);
- out-of-band (``OOB_MAGIC``): a prefix giving the sizes, the pickle stream, then the big
  buffers (arrays' memory, as protocol 5 hands it to ``buffer_callback``) one after the
  other, each starting a new chunk. A reader decompresses each chunk straight into its
  final buffer and calls ``pickle.loads(header, buffers=...)`` once every byte matched the
  SHA-256 (blobstore.BlobStore.load): one pass, no copy. The prefix starts with pickle's
  PROTO opcode and protocol 255, so a pickle blob still starts with 0x80 (what import
  checks) and a ledgerflow that predates the layout refuses it ("unsupported pickle
  protocol: 255") instead of misreading it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import math
import os
import pickle
import struct as _struct
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import zstandard

from . import forkhooks
from .structs import field, struct

JSON = "json"
PICKLE = "pickle"
ENCODINGS = (JSON, PICKLE)
CODEC = "zstd"
PICKLE_PROTOCOL = 5
# Level 1: on this kind of machine ~0.56 GB/s on random float64 against ~0.34 at level 3,
# for the same ratio there; chunks that do not compress at all get the fast negative level.
ZSTD_LEVEL = 1
ZSTD_FAST_LEVEL = -1
_PROBE = 256 * 1024  # bytes of a chunk compressed first, to tell if it compresses at all
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])

# Strings up to this many characters are stored in the queryable `value` column.
SCALAR_TEXT_MAX = 256
_JSON_MAX_DEPTH = 64

_local = threading.local()


def _compressor(level: int = ZSTD_LEVEL) -> zstandard.ZstdCompressor:
    # zstd (de)compressor objects are not thread-safe: one per thread and level.
    name = f"cctx{level}"
    c = getattr(_local, name, None)
    if c is None:
        # Frames carry zstd's checksum: large blobs are verified with it on load (cheap),
        # small ones against their SHA-256 as well (see Ledger.read_raw).
        c = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=True)
        setattr(_local, name, c)
    return c


def compress_frame(piece: Any) -> bytes:
    """One zstd frame for a chunk; a chunk whose first 256 KB do not shrink (random data,
    already-compressed bytes) is framed at the fast level instead of spending time on it."""
    if len(piece) > 4 * _PROBE:
        probe = _compressor().compress(piece[:_PROBE])
        if len(probe) > 0.97 * _PROBE:
            return _compressor(ZSTD_FAST_LEVEL).compress(piece)
    return _compressor().compress(piece)


# Inputs from this size on are hashed by OpenSSL through hashlib (1.4 GB/s here); smaller
# ones by CPython's own SHA-256, which spares a run the ~3 ms of loading OpenSSL.
_OPENSSL_FROM = 1024 * 1024


def new_sha256(size: int) -> Any:
    """A SHA-256 hasher suited to hashing `size` bytes (the digests are the same)."""
    if size < _OPENSSL_FROM:
        builtin = _builtin_sha256()
        if builtin is not None:
            return builtin()
    import hashlib

    return hashlib.sha256()


@functools.cache
def _builtin_sha256() -> Any:
    for module in ("_sha256", "_sha2"):  # CPython 3.11; 3.12 and later
        try:
            return importlib.import_module(module).sha256
        except (ImportError, AttributeError):
            continue
    return None


def prepare() -> None:
    """Make what encoding a small value needs (the builtin SHA-256, this thread's zstd
    contexts, allocated by a first use): the fork server calls it once, so its tasks
    inherit them instead of each making its own."""
    builtin = _builtin_sha256()
    if builtin is not None:
        _SMALL_SHA256[:] = [builtin]
    blob_from_raw(JSON, b"[1]")
    decompress_chunk(_compressor().compress(b"[1]"), 16)


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor()
    return d


@struct(hidden=("frames", "spill_sizes", "raw", "preview"))
class EncodedBlob:
    """A value's encoding, hashed and compressed into chunks ready to store.

    Chunks stay in memory, or, past SPILL_AT compressed bytes (256 MB), in a temporary file, so that
    a multi-GB value costs about one copy of itself in memory, never three."""

    sha: str
    encoding: str
    raw_size: int
    stored_size: int
    n_chunks: int
    frames: list[bytes] | None = None
    spill_path: str | None = None
    spill_sizes: list[int] = field(factory=list)
    raw: bytes | None = None  # kept for small values (caching)
    preview: str = ""  # stored with the blob (see models.Blob)

    def iter_chunks(self) -> Iterator[bytes]:
        if self.frames is not None:
            yield from self.frames
            return
        assert self.spill_path is not None
        with open(self.spill_path, "rb") as f:
            for size in self.spill_sizes:
                yield f.read(size)

    @property
    def chunks(self) -> list[bytes]:
        return list(self.iter_chunks())

    def discard(self) -> None:
        """Remove the spill file, if any (after the blob is stored or found redundant)."""
        if self.spill_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.spill_path)
            self.spill_path = None
            self.frames = []


# Compressed bytes a BlobWriter keeps in memory before it spills to a temporary file.
SPILL_AT = 256 * 1024 * 1024


class BlobWriter:
    """A file-like sink: bytes written are hashed and compressed chunk by chunk.

    `pickle` can dump straight into it, so a large value is never held twice in memory."""

    def __init__(self, encoding: str, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 keep_raw: int = 1024 * 1024, size_hint: int = 0):  # fmt: skip
        self.encoding = encoding
        self.chunk_size = chunk_size
        self._hash: Any = None  # made for the first chunk, by its size (or the hint)
        self._size_hint = size_hint
        self._buf = bytearray()
        self._frames: list[bytes] = []
        self._sizes: list[int] = []
        self._spill: Any = None
        self._keep_raw = keep_raw
        self._raw_parts: list[bytes] | None = []
        self._pending: list[Any] = []  # chunks being compressed in the background, in order
        self._held: Any = None
        self.raw_size = 0
        self.stored_size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        written = len(view)
        while len(view):
            if not self._buf and len(view) >= self.chunk_size:
                self._emit(view[: self.chunk_size])  # straight from the caller's buffer
                view = view[self.chunk_size :]
                continue
            room = self.chunk_size - len(self._buf)
            self._buf += view[:room]
            view = view[room:]
            if len(self._buf) == self.chunk_size:
                self._emit(self._buf)
                self._buf = bytearray()
        return written

    def end_chunk(self) -> None:
        """Close the chunk being filled here, even if short: what is written next starts
        a chunk of its own (the out-of-band layout's buffers do)."""
        if self._buf:
            self._emit(self._buf)
            self._buf = bytearray()

    def _emit(self, piece: Any) -> None:
        if self._hash is None:
            self._hash = new_sha256(max(len(piece), self._size_hint))
        self._hash.update(piece)
        self.raw_size += len(piece)
        if self._raw_parts is not None:
            if self.raw_size <= self._keep_raw:
                self._raw_parts.append(bytes(piece))
            else:
                self._raw_parts = None
        if self._held is None and not self._pending:
            self._held = piece  # the first chunk: a value that fits in it compresses inline
            return
        # A large value: its chunks compress in a background thread while this one pickles
        # and hashes the next (zstd and hashlib release the GIL). Two chunks in flight.
        if self._held is not None:
            self._pending.append(_background().submit(compress_frame, self._held))
            self._held = None
        self._pending.append(_background().submit(compress_frame, piece))
        while len(self._pending) > 2:
            self._store_frame(self._pending.pop(0).result())

    def _store_frame(self, frame: bytes) -> None:
        self.stored_size += len(frame)
        self._sizes.append(len(frame))
        if self._spill is None and self.stored_size > SPILL_AT:
            import tempfile  # only values past SPILL_AT need it

            self._spill = tempfile.NamedTemporaryFile(prefix="ledgerflow-blob-", delete=False)
            for earlier in self._frames:
                self._spill.write(earlier)
            self._frames = []
        if self._spill is not None:
            self._spill.write(frame)
        else:
            self._frames.append(frame)

    def finish(self, sha: str | None = None) -> EncodedBlob:
        if self._buf or self.raw_size == 0:
            self._emit(self._buf)
            self._buf = bytearray()
        if self._held is not None:
            self._store_frame(compress_frame(self._held))
            self._held = None
        for pending in self._pending:
            self._store_frame(pending.result())
        self._pending = []
        raw = b"".join(self._raw_parts) if self._raw_parts is not None else None
        blob = EncodedBlob(
            sha=sha or self._hash.hexdigest(),
            encoding=self.encoding,
            raw_size=self.raw_size,
            stored_size=self.stored_size,
            n_chunks=len(self._sizes),
            raw=raw,
        )
        if self._spill is not None:
            self._spill.close()
            blob.spill_path, blob.spill_sizes = self._spill.name, list(self._sizes)
        else:
            blob.frames = self._frames
        return blob


_pool_lock = threading.Lock()
_pool: Any = None


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
    forkhooks.idle_when(_forget_pool, lambda: _pool is None)


def _background() -> Any:
    """Shared threads (one per core, up to 4) compressing and decompressing the chunks of
    large values while the calling thread pickles, hashes or reads (zstd releases the GIL)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            workers = max(1, min(4, os.cpu_count() or 1))
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="ledgerflow-zstd")
        return _pool


# Chunks at least this large are decompressed in the background threads, in parallel.
_PARALLEL_FROM = 1024 * 1024
_IN_FLIGHT = 4  # chunks being decompressed at once (each holds its compressed frame)


class ChunkReader:
    """A file-like view of a blob's raw bytes, decompressing one chunk at a time and
    hashing as it goes; `pickle.load` reads large values straight into their final buffer
    (via readinto), whose chunks are decompressed in parallel."""

    def __init__(self, frames: Iterable[bytes], raw_size: int, chunk_bound: int,
                 hash_sha: bool = True):  # fmt: skip
        self._frames = iter(frames)
        self._bound = chunk_bound
        self._piece = memoryview(b"")
        self._hash = new_sha256(raw_size) if hash_sha else None
        self.raw_size = raw_size
        self.consumed = 0

    def _refill(self, out: memoryview, jobs: list[Any] | None = None) -> int:
        """Decompress the next chunk: straight into `out` when it fits whole (no copy,
        no temporary buffer; in the background when `jobs` collects the futures), else
        into the pending piece. Returns the bytes given to `out`; -1 at the end."""
        frame = next(self._frames, None)
        if frame is None:
            return -1
        size = _declared_size(frame, self._bound)
        if 0 <= size <= len(out):
            target = out[:size]
            if jobs is not None and self._hash is None and size >= _PARALLEL_FROM:
                jobs.append(_background().submit(decompress_into, frame, target))
                return size
            decompress_into(frame, target)
            if self._hash is not None:
                self._hash.update(target)
            return size
        piece = decompress_chunk(frame, self._bound)
        if self._hash is not None:
            self._hash.update(piece)
        self._piece = memoryview(piece)
        return 0

    def readinto(self, target: Any) -> int:
        out = memoryview(target).cast("B")
        filled = 0
        jobs: list[Any] = []
        try:
            while filled < len(out):
                if not len(self._piece):
                    got = self._refill(out[filled:], jobs)
                    if got < 0:
                        break
                    filled += got
                    while len(jobs) > _IN_FLIGHT:
                        jobs.pop(0).result()
                    continue
                n = min(len(out) - filled, len(self._piece))
                out[filled : filled + n] = self._piece[:n]
                self._piece = self._piece[n:]
                filled += n
        finally:
            _wait_all(jobs)  # never return while a thread still writes into target
        self.consumed += filled
        return filled

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.raw_size - self.consumed
        buf = bytearray(n)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def readline(self) -> bytes:
        line = bytearray()
        while True:
            c = self.read(1)
            line += c
            if not c or c == b"\n":
                return bytes(line)

    def sha_after_draining(self) -> str | None:
        """Read what is left and return the SHA-256 of everything (None when not hashing)."""
        while True:
            if len(self._piece):
                self.consumed += len(self._piece)
                self._piece = memoryview(b"")
            elif self._refill(memoryview(b"")) < 0:
                break
        return self._hash.hexdigest() if self._hash is not None else None


def peek_chunk(frame: bytes, n: int) -> bytes:
    """The first n bytes a stored chunk decompresses to (the rest is not decompressed)."""
    return bytes(_decompressor().stream_reader(frame, read_across_frames=False).read(n))


def background() -> Any:
    """The shared (de)compression threads (see _background)."""
    return _background()


def wait_all(jobs: list[Any]) -> None:
    """Wait for every future, then raise the first error among them, if any."""
    _wait_all(jobs)


def _wait_all(jobs: list[Any]) -> None:
    """Wait for every future, then raise the first error among them, if any."""
    error = None
    for job in jobs:
        try:
            job.result()
        except BaseException as e:  # noqa: BLE001 - the first error is raised once all finish
            error = error or e
    if error is not None:
        raise error


def is_json_exact(value: Any, _depth: int = 0) -> bool:
    """True if json.loads(json.dumps(value)) gives back an equal value of the same types."""
    if _depth > _JSON_MAX_DEPTH:
        return False
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return True
    if t is float:
        return math.isfinite(value)
    if t is list:
        return all(is_json_exact(v, _depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and is_json_exact(v, _depth + 1) for k, v in value.items())
    return False


def encode(value: Any) -> tuple[str, bytes]:
    """Return (encoding, raw bytes) for a value. Raises whatever pickling raises."""
    if is_json_exact(value):
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            return JSON, text.encode("utf-8")
        except (ValueError, UnicodeEncodeError, RecursionError):
            pass  # e.g. a lone surrogate in a str: pickle keeps it exactly
    import cloudpickle  # imported late: it is the slowest of our imports

    return PICKLE, cloudpickle.dumps(value, protocol=PICKLE_PROTOCOL)


def decode(encoding: str, raw: bytes | bytearray | memoryview) -> Any:
    """Turn raw bytes back into a value. Unpickles when encoding is 'pickle'."""
    if encoding == JSON:
        text = bytes(raw).decode("utf-8")
        # What json.loads gives, without its Python wrappers when the text is one JSON
        # value and nothing else (as encode() writes it); else json.loads itself.
        try:
            value, end = _json_scan(text, 0)
            if end == len(text):
                return value
        except StopIteration:
            pass
        return json.loads(text)
    if encoding == PICKLE:
        if is_oob(raw):
            view = memoryview(raw).cast("B")
            prefix, header, sizes = oob_layout(view, len(view))
            # Fresh writable buffers: an array must not be read-only, nor share the caller's
            # bytes (the one-pass load in blobstore decompresses into such buffers directly).
            buffers, at = [], prefix + header
            for size in sizes:
                target = new_buffer(size)
                memoryview(target).cast("B")[:] = view[at : at + size]
                buffers.append(target)
                at += size
            return pickle.loads(view[prefix : prefix + header], buffers=buffers)
        return pickle.loads(raw)
    raise ValueError(f"unknown artifact encoding {encoding!r}")


# -- the out-of-band layout of pickles (see the module docstring) ------------------------------

# PROTO 255, then a name and the layout's version.
OOB_MAGIC = b"\x80\xffLFOOB1"
# Buffers from this size on go out of band; smaller ones stay in the stream, so a value
# without a big buffer is the classic stream, byte for byte (same SHA as before the layout).
OOB_FROM = 1024 * 1024
# The stream of an out-of-band pickle is kept in memory until its buffers are known: past
# this, a value without big buffers switches to the classic streaming encoding, and one with
# them is pickled again that way (rare: a big buffer beside much in-band data).
OOB_HEADER_MAX = DEFAULT_CHUNK_SIZE
_COUNTS = _struct.Struct("<IQ")  # number of buffers, bytes of the pickle stream
_SIZE = _struct.Struct("<Q")


def is_oob(raw: Any) -> bool:
    """True if a pickle blob's raw bytes (or their start) have the out-of-band layout."""
    if isinstance(raw, (bytes, bytearray)):
        return raw.startswith(OOB_MAGIC)
    return bytes(memoryview(raw).cast("B")[: len(OOB_MAGIC)]) == OOB_MAGIC


def oob_prefix(header_size: int, sizes: list[int]) -> bytes:
    return (
        OOB_MAGIC + _COUNTS.pack(len(sizes), header_size) + b"".join(_SIZE.pack(n) for n in sizes)
    )


def oob_layout(first: Any, raw_size: int) -> tuple[int, int, list[int]]:
    """(prefix bytes, pickle stream bytes, buffer sizes) from the start of an out-of-band
    blob (at least its first chunk); ValueError unless they add up to raw_size exactly. The
    numbers are not trusted yet: they only say where bytes go until the SHA-256 matches."""
    view = memoryview(first).cast("B")
    at = len(OOB_MAGIC) + _COUNTS.size
    if bytes(view[: len(OOB_MAGIC)]) != OOB_MAGIC or len(view) < at:
        raise ValueError("not an out-of-band pickle")
    count, header = _COUNTS.unpack(view[len(OOB_MAGIC) : at])
    end = at + count * _SIZE.size
    if end > len(view):
        raise ValueError(f"declares {count} buffers, more than its first chunk describes")
    sizes = [_SIZE.unpack(view[i : i + _SIZE.size])[0] for i in range(at, end, _SIZE.size)]
    if header < 1 or end + header + sum(sizes) != raw_size:
        raise ValueError(f"its layout ({header} + {sum(sizes)} bytes) is not its {raw_size} bytes")
    return end, header, sizes


def new_buffer(size: int) -> Any:
    """A writable buffer for a value's out-of-band bytes: a numpy array when numpy is there
    (it asks for transparent huge pages: 200 MB first touched in 0.02 s, not 0.13 s)."""
    try:
        import numpy
    except ImportError:
        return bytearray(size)
    return numpy.empty(size, numpy.uint8)


class _StreamSink:
    """Where a pickle is written while its buffers are collected: in memory (the stream of
    an out-of-band pickle), or, once past OOB_HEADER_MAX without any out-of-band buffer, a
    BlobWriter streaming the classic encoding (the buffers that follow stay in-band)."""

    def __init__(self, chunk_size: int, hash_only: bool = False):
        self.head: bytearray | None = bytearray()
        self.buffers: list[memoryview] = []
        self.stream: Any = None
        self._chunk_size = chunk_size
        self._hash_only = hash_only
        # Raised from write() to stop pickling; told apart from the value's own errors by
        # identity (a private exception class would be outside exceptions.py's tree).
        self.too_long = BufferError("pickle stream too long to keep in memory")

    def write(self, data: Any) -> int:
        if self.stream is not None:
            return int(self.stream.write(data))
        assert self.head is not None
        view = memoryview(data).cast("B")  # bytes, or a PickleBuffer of in-band bytes
        self.head += view
        if len(self.head) > OOB_HEADER_MAX:
            if self.buffers:
                raise self.too_long
            self.stream = _HashWriter() if self._hash_only else BlobWriter(PICKLE, self._chunk_size)
            self.stream.write(self.head)
            self.head = None
        return len(view)

    def buffer_callback(self, buffer: pickle.PickleBuffer) -> bool:
        """False (out of band) for a big buffer while the stream is still in memory."""
        if self.stream is not None:
            return True
        raw = buffer.raw()
        if raw.nbytes < OOB_FROM:
            return True
        self.buffers.append(raw)
        return False


def _pickle_parts(value: Any, chunk_size: int, hash_only: bool = False) -> _StreamSink:
    """Pickle a value into a _StreamSink: its `stream` set (classic, streamed) or its `head`
    (the whole pickle stream) with `buffers` (none: a classic stream held in memory)."""
    import cloudpickle  # imported late: it is the slowest of our imports

    sink = _StreamSink(chunk_size, hash_only)
    try:
        cloudpickle.CloudPickler(sink, protocol=PICKLE_PROTOCOL,
                                 buffer_callback=sink.buffer_callback).dump(value)  # fmt: skip
    except BufferError as e:
        if e is not sink.too_long:
            raise
        sink = _StreamSink(chunk_size, hash_only)
        sink.stream = _HashWriter() if hash_only else BlobWriter(PICKLE, chunk_size)
        sink.head = None
        cloudpickle.CloudPickler(sink.stream, protocol=PICKLE_PROTOCOL).dump(value)
    return sink


class ParallelHasher:
    """SHA-256 of pieces fed in order, computed in a thread of its own (hashlib's SHA-256
    releases the GIL), so a load hashes one chunk while others decompress. A piece may wait
    on a future (its decompression) before it is hashed."""

    def __init__(self) -> None:
        import hashlib
        import queue

        self._hash = hashlib.sha256()
        self._queue: Any = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ledgerflow-sha", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            piece, after = item
            if self._error is not None:
                continue
            try:
                if after is not None:
                    after.result()
                self._hash.update(piece)
            except BaseException as e:  # noqa: BLE001 - reported by hexdigest()
                self._error = e

    def feed(self, piece: Any, after: Any = None) -> None:
        self._queue.put((piece, after))

    def hexdigest(self) -> str:
        """Wait for every piece; raise the first failure of a piece's future, if any."""
        self.close()
        if self._error is not None:
            raise self._error
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def sha256(raw: bytes | bytearray | memoryview) -> str:
    hasher = new_sha256(len(raw))
    hasher.update(raw)
    return hasher.hexdigest()


def _declared_size(frame: bytes, max_size: int) -> int:
    """The size a stored chunk declares (-1 if it does not), refused past max_size."""
    declared = zstandard.frame_content_size(frame)
    if declared > max_size:
        raise ValueError(f"zstd frame declares {declared} bytes, more than the {max_size} expected")
    return declared


def decompress_chunk(frame: bytes, max_size: int) -> bytes:
    """Decompress one stored chunk, refusing to produce more than max_size bytes."""
    _declared_size(frame, max_size)
    # max_output_size bounds frames that do not declare their size.
    return _decompressor().decompress(frame, max_output_size=max_size)


def decompress_into(frame: bytes, target: memoryview) -> None:
    """Decompress one chunk that declares len(target) bytes straight into target. The frame
    must end exactly there; reading to its end makes zstd check the frame's checksum."""
    reader = _decompressor().stream_reader(frame, read_across_frames=False)
    filled = 0
    while filled < len(target):
        n = reader.readinto(target[filled:])
        if not n:
            raise ValueError(f"zstd frame ended after {filled} of {len(target)} bytes")
        filled += n
    if reader.read(1):
        raise ValueError(f"zstd frame holds more than the {len(target)} bytes it declares")


class _HashWriter:
    """A sink that only hashes and counts: to tell whether a value changed, cheaply."""

    def __init__(self) -> None:
        self.hash = new_sha256(_OPENSSL_FROM)
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.hash.update(view)
        self.size += len(view)
        return len(view)


def digest(value: Any) -> str:
    """The SHA-256 a value's blob would have, without compressing or keeping anything."""
    if is_json_exact(value):
        try:
            return sha256(encode(value)[1])
        except RecursionError:
            pass
    sink = _pickle_parts(value, DEFAULT_CHUNK_SIZE, hash_only=True)
    if sink.stream is not None:
        return str(sink.stream.hash.hexdigest())
    assert sink.head is not None
    if not sink.buffers:
        return sha256(sink.head)
    hasher = new_sha256(_OPENSSL_FROM)
    hasher.update(oob_prefix(len(sink.head), [b.nbytes for b in sink.buffers]))
    hasher.update(sink.head)
    for buffer in sink.buffers:
        hasher.update(buffer)  # the array's own memory, no copy
    return str(hasher.hexdigest())


def digests(values: dict[str, Any]) -> dict[str, str | None]:
    """digest() of several values at once, each in a thread of its own (hashing releases
    the GIL); None for a value that cannot be pickled (its store will say why)."""

    def one(value: Any) -> str | None:
        try:
            return digest(value)
        except Exception:  # noqa: BLE001 - encoding it again reports the error
            return None

    if len(values) < 2:
        return {name: one(value) for name, value in values.items()}
    futures = {name: _background().submit(one, value) for name, value in values.items()}
    return {name: future.result() for name, future in futures.items()}


def encode_blob(value: Any, chunk_size: int = DEFAULT_CHUNK_SIZE,
                compress_small: bool = True) -> EncodedBlob:  # fmt: skip
    """Encode, hash and compress a value in one streaming pass. With `compress_small` False,
    a plain scalar's one chunk is left to compress (frame_later): a task's process sends it
    raw, and the runtime, where a zstd call costs a fraction of what it costs a freshly
    forked process (measured: ~20 page faults a task), compresses it."""
    raw = _scalar_json(value)
    if raw is not None and len(raw) <= min(chunk_size, _SMALL_SCALAR):
        return _small_blob(JSON, raw, compress_small)
    if is_json_exact(value):
        try:
            encoding, raw = encode(value)
            return blob_from_raw(encoding, raw, chunk_size)
        except RecursionError:
            pass
    sink = _pickle_parts(value, chunk_size)
    if sink.stream is not None:
        return sink.stream.finish()  # type: ignore[no-any-return]
    assert sink.head is not None
    if not sink.buffers:
        return blob_from_raw(PICKLE, sink.head, chunk_size)
    # Out of band: prefix and stream, then each buffer from a chunk of its own, written
    # from the value's own memory (hashed here, compressed in the background threads).
    prefix = oob_prefix(len(sink.head), [b.nbytes for b in sink.buffers])
    if len(prefix) > chunk_size:  # readers find the layout in the first chunk
        import cloudpickle

        writer = BlobWriter(PICKLE, chunk_size)
        cloudpickle.CloudPickler(writer, protocol=PICKLE_PROTOCOL).dump(value)
        return writer.finish()
    size = len(prefix) + len(sink.head) + sum(b.nbytes for b in sink.buffers)
    writer = BlobWriter(PICKLE, chunk_size, size_hint=size)
    writer.write(prefix)
    writer.write(sink.head)
    for buffer in sink.buffers:
        writer.end_chunk()
        writer.write(buffer)
    return writer.finish()


def _scalar_json(value: Any) -> bytes | None:
    """The JSON text encode() gives a plain scalar (None, a bool, an int, a finite float, a
    str), written without json.dumps' encoder object (most artifacts of a task are such
    values: measured, json.dumps and BlobWriter cost a task's process ~50 page faults for
    one int); None for any other value, and for a str that is not UTF-8."""
    t = type(value)
    if t is int:
        return int.__repr__(value).encode()  # as json's encoder writes an int
    if t is str:
        try:
            return _json_str(value).encode("utf-8")
        except UnicodeEncodeError:
            return None  # a lone surrogate: pickled, as encode() does
    if t is float:
        return float.__repr__(value).encode() if math.isfinite(value) else None
    if value is None:
        return b"null"
    if t is bool:
        return b"true" if value else b"false"
    return None


# Scalars encoded up to this size take _small_blob (within a chunk and what BlobWriter keeps).
_SMALL_SCALAR = 64 * 1024

# json.loads' own scanner (its default decoder's).
_json_scan = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]

# The JSON string literal of a str, as json.dumps(ensure_ascii=False) writes it.
_json_str = json.encoder.encode_basestring


def _small_blob(encoding: str, raw: bytes, compress: bool = True) -> EncodedBlob:
    """The blob blob_from_raw gives for raw bytes of one chunk that fit what a BlobWriter
    keeps (one frame, the raw bytes kept), made without one; without `compress`, its
    frame is left for frame_later to make."""
    if _SMALL_SHA256 and len(raw) < _OPENSSL_FROM:
        hasher = _SMALL_SHA256[0](raw)  # new_sha256's choice, found once (prepare)
    else:
        hasher = new_sha256(len(raw))
        hasher.update(raw)
    if not compress:
        return _one_chunk(hasher.hexdigest(), encoding, len(raw), 0, None, raw)
    frame = compress_frame(raw)
    return _one_chunk(hasher.hexdigest(), encoding, len(raw), len(frame), [frame], raw)


# CPython's own SHA-256, found by prepare() (a fork server's tasks then call it directly).
_SMALL_SHA256: list[Any] = []


def _one_chunk(sha: str, encoding: str, raw_size: int, stored_size: int,
               frames: list[bytes] | None, raw: bytes) -> EncodedBlob:  # fmt: skip
    """EncodedBlob(sha, encoding, raw_size, stored_size, 1, frames, None, [], raw, ""), with
    an attribute store per field: a task's process makes one per small value, and the
    struct's constructor would write to the pages of its field names (taskspec.py says why)."""
    blob = _new(EncodedBlob)
    blob.sha = sha
    blob.encoding = encoding
    blob.raw_size = raw_size
    blob.stored_size = stored_size
    blob.n_chunks = 1
    blob.frames = frames
    blob.spill_path = None
    blob.spill_sizes = []
    blob.raw = raw
    blob.preview = ""
    return blob


_new = object.__new__


def frame_later(blob: EncodedBlob) -> None:
    """Compress the one chunk of a blob encode_blob left uncompressed (a blob whose frames
    are there already is left as it is)."""
    if blob.frames is None and blob.spill_path is None and blob.raw is not None:
        frame = compress_frame(blob.raw)
        blob.frames, blob.stored_size = [frame], len(frame)


def blob_from_raw(
    encoding: str, raw: Any, chunk_size: int = DEFAULT_CHUNK_SIZE, sha: str | None = None
) -> EncodedBlob:
    """Hash (unless the SHA is given) and compress raw encoded bytes."""
    writer = BlobWriter(encoding, chunk_size)
    writer.write(raw)
    return writer.finish(sha)


def type_name(value: Any) -> str:
    """'module.Qualname' of a value's type, as Metaflow names exception types."""
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


def scalar_value(value: Any) -> Any:
    """The value for the queryable `value` column: numbers, bools, short strings, else None."""
    t = type(value)
    if t is bool:
        return int(value)
    if t is int:
        # SQLite integers are 64-bit; larger ones are stored as their text.
        return value if -(2**63) <= value < 2**63 else None
    if t is float:
        return value if math.isfinite(value) else None
    if t is str and len(value) <= SCALAR_TEXT_MAX and _utf8(value):
        return value
    return None


def _utf8(text: str) -> bool:
    """False for a string SQLite cannot store as text (a lone surrogate: the value itself
    is kept exactly, pickled)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
