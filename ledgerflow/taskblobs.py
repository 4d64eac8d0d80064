"""A task's blob access: where its input values come from and where the blobs of the
values it set go (`BlobAccess`; `LedgerBlobs` for tasks on this machine), and how a value
becomes an artifact record and its encoded blob (`encode_artifact`).

Owner: taskpath. executors/dask.py brings its own BlobAccess (values shipped to a worker).
"""

from __future__ import annotations

from typing import Any, Protocol

from . import codec, writes
from .blobstore import decode_verified
from .exceptions import LedgerError
from .ledger import Ledger, chunk_size_setting
from .preview import preview
from .records import ArtifactRecord
from .taskspec import TaskResult, new_record


def encode_artifact(
    name: str, value: Any, chunk_size: int, compress_small: bool = True
) -> tuple[ArtifactRecord, codec.EncodedBlob]:
    """An artifact's record and its encoded blob (hashed, compressed, with its preview;
    `compress_small`: see codec.encode_blob)."""
    blob = codec.encode_blob(value, chunk_size, compress_small)
    blob.preview = preview(value)
    record = new_record(name, blob.sha, blob.encoding, codec.type_name(value), blob.raw_size,
                        codec.scalar_value(value), blob.preview, False)  # fmt: skip
    return record, blob


class BlobAccess(Protocol):
    """The seam between a task and storage: `load(sha)` gives an input's value (a fresh
    object each call), `prefetch(shas)` readies many inputs' values at once (a join's
    column: joins.py), `store(name, value, result)` encodes a value the task set and either
    keeps its blob or puts it in `result.blobs` for the runtime to commit. LedgerBlobs is
    the local executors' (the run's ledger); an executor whose tasks run where the ledger is
    not (executors/dask.py) passes its own."""

    chunk_size: int

    def load(self, sha: str) -> Any: ...

    def prefetch(self, shas: list[str]) -> None: ...

    def store(self, name: str, value: Any, result: TaskResult) -> ArtifactRecord: ...


# A task in its own process writes blobs from this size on into the ledger itself, so their
# bytes are not copied once more through a pipe into the runtime (which would then hold them).
WRITE_IN_TASK_FROM = 256 * 1024


# The chunk size setting read once by the fork server (prepare_in_server): its tasks have
# its environment, and reading it again cost each ~35 page faults (a function-level import).
_CHUNK_SIZE: list[int] = []


def prepare_in_server() -> None:
    """In the fork server: what LedgerBlobs would read in each task. A bad setting is left
    for each task to read and report, as before."""
    try:
        _CHUNK_SIZE[:] = [chunk_size_setting()]
    except LedgerError:
        _CHUNK_SIZE.clear()


class LedgerBlobs:
    """Inputs read from the run's ledger. A task in a process of its own opens the file as
    a task does (Ledger.for_task) and commits its large blobs itself; a task in the run's
    process shares the run's Ledger and hands every new blob to the runtime."""

    def __init__(self, ledger_path: str, own_process: bool,
                 preloaded: dict[str, tuple[str, bytes]] | None = None):  # fmt: skip
        self.ledger_path = ledger_path
        self.own_process = own_process
        # Small inputs the runtime sent with the spec (bytes it had verified): a task whose
        # inputs are all here never opens the ledger.
        self.preloaded = preloaded or {}
        self._ledger: Ledger | None = None
        self.chunk_size = _CHUNK_SIZE[0] if own_process and _CHUNK_SIZE else chunk_size_setting()

    @property
    def ledger(self) -> Ledger:
        """The run's ledger, opened on first need (a task whose inputs all came with its
        spec never opens it: about 90 page faults fewer in that phase)."""
        if self._ledger is None:
            path = self.ledger_path
            if self.own_process:
                self._ledger = Ledger.for_task(path)
                # The runtime copies the WAL into the file (see Checkpointer.enabled).
                self._ledger.checkpointer.enabled = False
            else:
                self._ledger = Ledger.open(path)
        return self._ledger

    def load(self, sha: str) -> Any:
        sent = self.preloaded.get(sha)
        if sent is not None:
            return decode_verified(sha, sent[0], sent[1], None, self.ledger_path)
        return self.ledger.load(sha)

    def prefetch(self, shas: list[str]) -> None:
        """Read the small values among `shas` (not sent with the spec) in a few queries,
        verified, into the ledger's cache; `load` then finds them there."""
        missing = [sha for sha in shas if sha not in self.preloaded]
        if len(missing) > 1:
            self.ledger.blobs.prefetch(missing)

    def store(self, name: str, value: Any, result: TaskResult) -> ArtifactRecord:
        # A task's own process leaves a small scalar's frame to the runtime, which receives
        # it with the result (taskspec.result_from_wire compresses it).
        record, blob = encode_artifact(name, value, self.chunk_size, not self.own_process)
        if self.own_process:
            if blob.raw_size < WRITE_IN_TASK_FROM:
                result.blobs.append(blob)  # the ledger stays unopened for small values
                return record
            try:
                # A content-addressed row: the runtime's task commit then references it.
                writes.store_blobs(self.ledger, [blob])
            except LedgerError:
                # Full disk, a locked or vanished file: the blob goes with the result, and
                # the runtime's own write meets the same error and stops the run with one
                # clear line.
                result.blobs.append(blob)
            return record
        ledger = self.ledger
        if ledger.blobs.knows(blob.sha):
            blob.discard()  # stored already (deduplicated)
        else:
            result.blobs.append(blob)
        if blob.raw is not None:
            ledger.blobs.cache.put(blob.sha, blob.encoding, blob.raw)
        return record
