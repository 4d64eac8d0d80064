"""What a task hands to the ledger: plain records, no I/O (cheap to import). The writer
(`writes.py`) reads a task row's columns from a `TaskRecord` by the names `tables.TASK`
declares: each field is a declared column or one of `TASK_RECORD_NOT_COLUMNS`, and every
NOT NULL column has a field (tests/test_tables.py); a nullable column without a field is
written NULL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .structs import field, struct

if TYPE_CHECKING:
    from .codec import EncodedBlob


@struct
class ArtifactRecord:
    name: str
    sha: str
    encoding: str
    type: str
    size: int
    value: Any = None
    preview: str = ""
    inherited: bool = False


@struct
class CardRecord:
    """One card of a task attempt, as the task hands it to the writer (a `card` row)."""

    type: str
    id: str | None = None
    sha: str | None = None  # the HTML blob; None when rendering failed and save_errors=False
    error: str | None = None  # why rendering failed (the HTML then shows it, save_errors=True)


@struct
class TaskRecord:
    """Everything one task attempt writes, committed in one transaction: when it starts
    (status 'running', no pk yet) and when it ends (with the pk its start returned; its
    stdout/stderr are then what the log has not received yet)."""

    run_pk: int
    step: str
    task_id: str
    status: str
    started_at: str
    finished_at: str | None
    attempt: int = 0
    foreach_index: int | None = None
    foreach_stack: list[Any] = field(factory=list)
    exception_type: str | None = None
    exception: str | None = None
    traceback: str | None = None
    parent_pks: list[int] = field(factory=list)
    artifacts: list[ArtifactRecord] = field(factory=list)
    blobs: list[EncodedBlob] = field(factory=list)
    stdout: str = ""
    stderr: str = ""
    origin_pathspec: str | None = None
    transition: dict[str, Any] | None = None
    pk: int | None = None
    cards: list[CardRecord] = field(factory=list)
    host: str | None = None  # the machine it ran on, if not the run's (a Dask worker)
    reuse_key: Any = None  # a reuse.ReuseKey: what `run --reuse` matches it by


# What a TaskRecord carries besides the task row's columns (written to other tables, or
# the pk its start returned).
TASK_RECORD_NOT_COLUMNS = ("parent_pks", "artifacts", "blobs", "stdout", "stderr", "pk",
                           "cards", "reuse_key")  # fmt: skip
