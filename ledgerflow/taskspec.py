"""The records a task travels in: `TaskSpec` (what a worker needs to run one task; picklable,
sent to a task's process) and `TaskResult` (what the task produced, for the runtime's single
writer to commit).

Owner: taskpath. Both are read by the runtime, every executor and the task itself.
"""

from __future__ import annotations

from typing import Any

from . import codec
from .flowspec import ForeachFrame, Transition
from .records import ArtifactRecord
from .structs import field, struct


@struct
class TaskSpec:
    """Everything a worker needs to run one task; picklable."""

    flow_file: str
    flow_module: str
    class_name: str
    ledger_path: str
    flow_name: str
    run_id: str
    run_pk: int
    step: str
    task_id: str
    attempt: int = 0
    max_retries: int = 0  # from @retry(times=...)
    is_join: bool = False
    # One artifact map per parent task, and the parents' steps/stacks; a join is given its
    # parents' task pks instead, and reads the rest from the ledger (resolve_join_inputs).
    inputs: list[dict[str, ArtifactRecord]] = field(factory=list)
    input_pks: list[int] = field(factory=list)
    input_steps: list[str] = field(factory=list)
    input_stacks: list[list[ForeachFrame]] = field(factory=list)
    foreach_stack: list[ForeachFrame] = field(factory=list)
    foreach_item: tuple[str, bytes] | None = None  # the innermost item, encoded (if known)
    constants: dict[str, ArtifactRecord] = field(factory=dict)
    # sha -> (encoding, bytes) of small inputs the runtime had at hand (see runtime.py)
    preloaded: dict[str, tuple[str, bytes]] = field(factory=dict)
    param_names: frozenset[str] = frozenset()
    max_num_splits: int = 100
    username: str | None = None
    tags: list[str] = field(factory=list)
    origin_run_id: str | None = None
    # @timeout of the step in seconds (None: none), read once when the spec is made: the
    # executor's deadline and the task's own alarm both come from here.
    timeout: float | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step}/{self.task_id}"


@struct
class TaskResult:
    spec: TaskSpec
    status: str  # succeeded | failed | caught
    started_at: str
    finished_at: str
    artifacts: dict[str, ArtifactRecord] = field(factory=dict)
    blobs: list[codec.EncodedBlob] = field(factory=list)
    transition: Transition | None = None
    exception_type: str | None = None
    exception: str | None = None
    traceback: str | None = None
    location: str | None = None  # 'file:line' of the innermost user frame of the failure
    # Output: a task that ran sent it to its output sink as it came; these hold the text of
    # a task cloned by `resume` (its origin's output).
    stdout: str = ""
    stderr: str = ""
    warnings: list[str] = field(factory=list)  # the runtime shows them, even with --quiet
    cards: list[Any] = field(factory=list)  # CardRecords (ledgerflow/cards), blobs in `blobs`
    host: str | None = None  # the machine it ran on, if not the run's (a Dask worker)
    # Names of artifacts passed on as the spec gave them, sent instead of their records by a
    # task's process (taskoutput.compact_result); the runtime puts the records back.
    carried: list[str] = field(factory=list)

    @property
    def ok(self) -> bool:
        """The flow goes on after this task (it succeeded, or @catch caught its failure)."""
        return self.status in ("succeeded", "caught")
