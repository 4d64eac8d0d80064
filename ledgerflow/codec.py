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
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import zstandard

JSON = "json"
PICKLE = "pickle"
ENCODINGS = (JSON, PICKLE)
CODEC = "zstd"
PICKLE_PROTOCOL = 5
ZSTD_LEVEL = 3
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
PYTHON_VERSION = "%d.%d.%d" % sys.version_info[:3]

# Strings up to this many characters are stored in the queryable `value` column.
SCALAR_TEXT_MAX = 256
_JSON_MAX_DEPTH = 64

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # zstd (de)compressor objects are not thread-safe: one per thread.
    c = getattr(_local, "cctx", None)
    if c is None:
        c = _local.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor()
    return d


@dataclass
class EncodedBlob:
    """A value's raw encoding, hashed and compressed into chunks ready to store."""

    sha: str
    encoding: str
    raw_size: int
    chunks: list[bytes] = field(repr=False)

    @property
    def stored_size(self) -> int:
        return sum(len(c) for c in self.chunks)


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


def decode(encoding: str, raw: bytes | memoryview) -> Any:
    """Turn raw bytes back into a value. Unpickles when encoding is 'pickle'."""
    if encoding == JSON:
        return json.loads(bytes(raw).decode("utf-8"))
    if encoding == PICKLE:
        return pickle.loads(raw)
    raise ValueError(f"unknown artifact encoding {encoding!r}")


def sha256(raw: bytes | memoryview) -> str:
    return hashlib.sha256(raw).hexdigest()


def compress_chunks(raw: bytes | memoryview, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[bytes]:
    """Split raw bytes into chunk_size pieces, each compressed into its own zstd frame."""
    view = memoryview(raw)
    cctx = _compressor()
    if len(view) == 0:
        return [cctx.compress(b"")]
    return [cctx.compress(view[i : i + chunk_size]) for i in range(0, len(view), chunk_size)]


def decompress_chunk(frame: bytes, max_size: int) -> bytes:
    """Decompress one stored chunk, refusing to produce more than max_size bytes."""
    declared = zstandard.frame_content_size(frame)
    if declared > max_size:
        raise ValueError(f"zstd frame declares {declared} bytes, more than the {max_size} expected")
    # max_output_size bounds frames that do not declare their size.
    return _decompressor().decompress(frame, max_output_size=max_size)


def join_chunks(frames: Iterable[bytes], raw_size: int, chunk_size_hint: int = 0) -> bytes:
    """Decompress a blob's chunks into its raw bytes (exactly raw_size of them)."""
    out = bytearray(raw_size) if raw_size else bytearray()
    pos = 0
    for frame in frames:
        left = raw_size - pos
        piece = decompress_chunk(frame, max(left, 1))
        out[pos : pos + len(piece)] = piece
        pos += len(piece)
    if pos != raw_size:
        raise ValueError(f"blob decompressed to {pos} bytes, expected {raw_size}")
    return bytes(out)


def encode_blob(value: Any, chunk_size: int = DEFAULT_CHUNK_SIZE) -> EncodedBlob:
    """Encode, hash and compress a value in one go."""
    encoding, raw = encode(value)
    return blob_from_raw(encoding, raw, chunk_size)


def blob_from_raw(
    encoding: str, raw: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE, sha: str | None = None
) -> EncodedBlob:
    """Hash (unless the SHA is given) and compress raw encoded bytes."""
    return EncodedBlob(sha or sha256(raw), encoding, len(raw), compress_chunks(raw, chunk_size))


def iter_decompressed(frames: Iterable[bytes], max_chunk: int) -> Iterator[bytes]:
    for frame in frames:
        yield decompress_chunk(frame, max_chunk)


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
    if t is str and len(value) <= SCALAR_TEXT_MAX:
        return value
    return None


PREVIEW_MAX = 2000
_PREVIEW_ITEMS = 50


def preview(value: Any, limit: int = PREVIEW_MAX) -> str:
    """A bounded text preview of a value for display and search. Never calls user __repr__.

    Strings are truncated, numbers written out, containers contribute their keys and scalar
    leaves, arrays and data frames their type, shape and column names, anything else its
    type name. Never raises.
    """
    out: list[str] = []
    budget = [limit]

    def emit(text: str) -> None:
        if budget[0] <= 0:
            return
        text = text[: budget[0]]
        out.append(text)
        budget[0] -= len(text) + 1

    def walk(v: Any, depth: int) -> None:
        if budget[0] <= 0 or depth > 8:
            return
        t = type(v)
        if v is None or t in (bool, int, float, complex):
            emit(repr(v) if t is not int or abs(v) < 10**50 else f"<int of {v.bit_length()} bits>")
        elif t is str:
            emit(v)
        elif t in (bytes, bytearray, memoryview):
            emit(f"<{t.__name__} of {len(v)} bytes>")
        elif t in (list, tuple, set, frozenset):
            for i, item in enumerate(v):
                if i >= _PREVIEW_ITEMS:
                    emit(f"... {len(v)} items")
                    break
                walk(item, depth + 1)
        elif t is dict or isinstance(v, dict):
            for i, (k, item) in enumerate(v.items()):
                if i >= _PREVIEW_ITEMS:
                    emit(f"... {len(v)} keys")
                    break
                walk(k, depth + 1)
                walk(item, depth + 1)
        else:
            described = _describe_array_like(v)
            emit(described or type_name(v))

    try:
        walk(value, 0)
    except Exception:  # a preview must never fail a task
        return type_name(value)[:limit]
    return " ".join(out)[:limit]


def _describe_array_like(v: Any) -> str | None:
    """Type, shape and columns of numpy arrays / pandas frames, read without calling repr."""
    t = type(v)
    mod = t.__module__ or ""
    if not (mod.startswith("numpy") or mod.startswith("pandas")):
        return None
    parts = [type_name(v)]
    shape = getattr(v, "shape", None)
    if isinstance(shape, tuple):
        parts.append("shape=" + "x".join(str(int(s)) for s in shape))
    dtype = getattr(v, "dtype", None)
    if dtype is not None and mod.startswith("numpy"):
        parts.append(f"dtype={dtype}")
    columns = getattr(v, "columns", None)
    if columns is not None:
        try:
            parts.append("columns: " + " ".join(str(c) for c in list(columns)[:_PREVIEW_ITEMS]))
        except Exception:
            pass
    return " ".join(parts)

