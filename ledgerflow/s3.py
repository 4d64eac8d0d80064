"""`S3`: Metaflow's object-store surface, kept in the ledger itself (no cloud account).

    with S3(run=self) as s3:          # in a step: keys belong to this run
        s3.put("large_data", large_data)
    with S3(run=self) as s3:
        large_data = s3.get("large_data").blob

Objects are stored like artifacts — content-addressed by SHA-256, chunked, zstd — in
`s3_object(run, key, sha, encoding, size)`. `put` takes bytes and str as Metaflow does, and
also any other value (stored with the artifact codec, so `.blob` gives the value back).
`S3(run=Run("Flow/123"))` reads another run's objects.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from typing import Any

from . import codec, reads, writes
from .exceptions import LedgerflowError, MetaflowNotFound, MetaflowS3NotFound
from .ledger import Ledger
from .structs import struct
from .trust_store import require_trust

BYTES, TEXT = "bytes", "text"


@struct
class S3Object:
    """What `get` returns: `.blob` (bytes, or the value for non-bytes puts), `.text`,
    `.path` (a temporary file with the bytes), `.key`, `.url`, `.size`, `.exists`."""

    key: str
    url: str
    size: int
    encoding: str
    _raw: bytes | bytearray
    _tmpdir: str
    _trust_check: Any = None

    exists = True
    downloaded = True

    @property
    def blob(self) -> Any:
        if self.encoding == BYTES:
            return self._raw
        if self.encoding == TEXT:
            return self._raw
        if self.encoding == codec.PICKLE and self._trust_check is not None:
            self._trust_check(self.url)
        return codec.decode(self.encoding, self._raw)

    @property
    def text(self) -> str:
        if self.encoding in (BYTES, TEXT, codec.JSON):
            return self._raw.decode("utf-8")
        raise LedgerflowError(f"s3 object '{self.key}' holds a pickled value, not text; use .blob")

    @property
    def path(self) -> str:
        path = os.path.join(self._tmpdir, self.key.replace("/", "_") or "object")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(self._raw)
        return path

    def __repr__(self) -> str:
        return f"<S3Object {self.url} ({self.size} bytes)>"


class S3:
    """Run-scoped object storage in the ledger. Use as a context manager, like Metaflow's."""

    def __init__(self, run: Any = None, ledger: str | os.PathLike[str] | Ledger | None = None,
                 **_ignored: Any):  # fmt: skip
        self._ledger, self._run_pk, self._prefix = _scope(run, ledger)
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> S3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def _dir(self) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="ledgerflow-s3-")
        return self._tmpdir.name

    def _url(self, key: str) -> str:
        return f"ledger://{self._prefix}/{key}"

    # -- writing ---------------------------------------------------------------------------

    def put(self, key: str, obj: Any, overwrite: bool = True) -> str:
        """Store obj (bytes, str, or any value) under key; returns its URL."""
        key = _check_key(key)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            blob = codec.blob_from_raw(BYTES, obj, self._ledger.chunk_size)  # no copy
        elif isinstance(obj, str):
            blob = codec.blob_from_raw(TEXT, obj.encode("utf-8"), self._ledger.chunk_size)
        else:
            blob = codec.encode_blob(obj, self._ledger.chunk_size)
        with self._ledger.write() as conn:
            if not overwrite and writes.s3_object_exists(conn, self._run_pk, key):
                blob.discard()
                return self._url(key)
            self._ledger.blobs.put(conn, blob)
            writes.put_s3_object(conn, self._run_pk, key, blob)
        blob.discard()
        return self._url(key)

    def put_many(
        self, key_objs: Iterable[tuple[str, Any]], overwrite: bool = True
    ) -> list[tuple[str, str]]:
        return [(key, self.put(key, obj, overwrite)) for key, obj in key_objs]

    def put_files(
        self, key_paths: Iterable[tuple[str, str] | Any], overwrite: bool = True
    ) -> list[tuple[str, str]]:
        """Store local files: pairs of (key, path) (or objects with .key and .path)."""
        out = []
        for item in key_paths:
            key, path = (item.key, item.path) if hasattr(item, "path") else item  # type: ignore[union-attr]
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise LedgerflowError(f"s3.put_files: cannot read {path}: {e.strerror}") from None
            out.append((key, self.put(key, data, overwrite)))
        return out

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str | None = None, return_missing: bool = False) -> S3Object | Any:
        key = _check_key(key or "")
        row = reads.s3_object(self._ledger, self._run_pk, key)
        if row is None:
            if return_missing:
                return _Missing(key, self._url(key))
            raise MetaflowS3NotFound(
                f"no s3 object '{key}' in run {self._prefix}; keys here: "
                f"{', '.join(self.list_keys()[:10]) or 'none'}"
            )
        sha, encoding, size = row["sha"], row["encoding"], row["size"]
        _, raw = self._ledger.read_raw(sha)
        return S3Object(key, self._url(key), size, encoding, raw, self._dir(), self._check_trust)

    def _check_trust(self, what: str) -> None:
        require_trust(self._ledger, self._run_pk, what)

    def get_many(self, keys: Iterable[str], return_missing: bool = False) -> list[Any]:
        return [self.get(key, return_missing) for key in keys]

    def get_all(self) -> list[S3Object]:
        return [self.get(key) for key in self.list_keys()]

    def list_keys(self) -> list[str]:
        return [key for key, _ in reads.s3_keys(self._ledger, self._run_pk)]

    def list_paths(self, keys: Iterable[str] | None = None) -> list[_Listing]:
        """Objects under each prefix (all of the run's objects when keys is None)."""
        prefixes = list(keys) if keys else [""]
        rows = reads.s3_keys(self._ledger, self._run_pk)
        out = []
        for prefix in prefixes:
            for key, size in rows:
                if key.startswith(prefix):
                    out.append(_Listing(key, self._url(key), size))
        return out


@struct
class _Listing:
    key: str
    url: str
    size: int
    exists = True


@struct
class _Missing:
    key: str
    url: str
    exists = False
    size = None
    blob = None


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip("/"):
        raise LedgerflowError(f"s3 keys are non-empty strings, not {key!r}")
    return key.strip("/")


def _scope(run: Any, ledger: Any) -> tuple[Ledger, int, str]:
    """(ledger, run pk, 'Flow/RunId') for S3(run=...)."""
    from .flowspec import FlowSpec

    if isinstance(run, FlowSpec):
        from .current import current

        if not current.is_running_flow:
            raise LedgerflowError("S3(run=self) works inside a running step")
        flow_name, run_id = current.flow_name, current.run_id
        target = ledger or _current_ledger()
    elif run is not None and hasattr(run, "pathspec") and hasattr(run, "_ledger"):
        flow_name, run_id = run.pathspec.split("/")[:2]
        target = ledger or run._ledger
    else:
        raise LedgerflowError(
            "S3 needs a run: S3(run=self) in a step, or S3(run=Run('Flow/RunId'))"
        )
    opened = target if isinstance(target, Ledger) else Ledger.open(target)
    row = reads.find_run(opened, flow_name, run_id)
    if row is None:
        raise MetaflowNotFound(f"run {flow_name}/{run_id} does not exist in {opened.path}")
    return opened, int(row["pk"]), f"{flow_name}/{run_id}"


def _current_ledger() -> Ledger:
    from .ledger_choice import ledger_path

    return Ledger.open(ledger_path())
