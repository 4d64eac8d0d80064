"""What a task hands to the ledger: plain records, no I/O (cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .codec import EncodedBlob


@dataclass
class ArtifactRecord:
    name: str
    sha: str
    encoding: str
    type: str
    size: int
    value: Any = None
    preview: str = ""
    inherited: bool = False


@dataclass
class TaskRecord:
    """Everything one finished task attempt writes, committed in one transaction."""

    run_pk: int
    step: str
    task_id: str
    status: str
    started_at: str
    finished_at: str | None
    attempt: int = 0
    foreach_index: int | None = None
    foreach_stack: list[Any] = field(default_factory=list)
    exception_type: str | None = None
    exception: str | None = None
    traceback: str | None = None
    parent_pks: list[int] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    blobs: list[EncodedBlob] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    origin_pathspec: str | None = None
    transition: dict[str, Any] | None = None
