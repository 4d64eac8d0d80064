"""The Client API's object tree, Metaflow's `Metaflow > Flow > Run > Step > Task >
DataArtifact`. Each object knows its parent and its children (a Run lists its Steps, a Step
built from a pathspec opens its Run), so the tree is one module, as Metaflow's client/core.py
is; what the objects share is in base.py, the small values they hand out in extras.py, and
their notebook views in notebook.py.

Runs are listed newest first and filtered by the namespace with indexed SQL; run tags are
changed in one transaction. A Task is its highest attempt unless built with attempt=N; only
`DataArtifact.data` (and `task.data.x`) decodes a value.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, cast

from .. import ledger_choice, reads
from ..clock import parse_iso
from ..exceptions import MetaflowExceptionWrapper, MetaflowNamespaceMismatch, MetaflowTaggingError
from ..flowspec import ForeachFrame
from ..internals import INTERNAL_ARTIFACTS
from ..tags import MAX_USER_TAG_SET_SIZE, is_stringish, tag_list
from ..trust_store import require_trust
from .base import (
    END_STEP,
    MetaflowObject,
    _find_artifact,
    _find_run,
    _find_step_row,
    _find_task,
    _no_flow_detail,
    _not_found,
)
from .context import get_namespace
from .extras import Metadata, MetaflowCode, MetaflowData, StepExtras, TaskExtras


def _open_run(holder: MetaflowObject, flow: str, run_id: str, requested: str) -> Run:
    """The run named by a pathspec, with the holder's ledger and namespace (refused when
    outside the namespace)."""
    run = Run._make(holder, _find_run(holder._ledger, flow, run_id, requested))
    if holder._namespace_check and holder._current_namespace not in run._tags:
        raise MetaflowNamespaceMismatch(holder._current_namespace, requested)
    return run


class Metaflow:
    """Entry point: the flows in the ledger that have a run in the current namespace."""

    def __init__(
        self, ledger: ledger_choice.LedgerLike | None = None, _current_metadata: str | None = None
    ):
        self._ledger = ledger_choice.resolve_ledger(
            ledger if ledger is not None else _current_metadata
        )
        self._attempt = None

    @property
    def _current_namespace(self) -> str | None:
        return get_namespace()

    @property
    def _namespace_check(self) -> bool:
        return self._current_namespace is not None

    @property
    def flows(self) -> list[Flow]:
        """Every flow with at least one run in the current namespace, by name."""
        return list(self)

    def __iter__(self) -> Iterator[Flow]:
        for row in reads.flows(self._ledger, self._current_namespace):
            yield Flow._make(self, row)

    def __getitem__(self, name: str) -> Flow:
        return Flow(name, ledger=self._ledger)

    def _ipython_key_completions_(self) -> list[str]:
        return [f.id for f in self]

    def __str__(self) -> str:
        return "Metaflow()"

    __repr__ = __str__


class Flow(MetaflowObject):
    """A flow: a container of its runs, newest first."""

    _NAME = "flow"
    _PARTS = 1
    _FORM = "Flow('FlowName')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        row = reads.flow(self._ledger, ids[0])
        if row is None:
            raise _not_found(requested, self._ledger, _no_flow_detail(self._ledger, ids[0]))
        self._row = row
        self.id = row["name"]
        if self._namespace_check and not self._has_run_in(self._current_namespace):
            raise MetaflowNamespaceMismatch(self._current_namespace, requested)

    @classmethod
    def _make(cls, parent: Any, row: dict[str, Any]) -> Flow:
        flow = cls.__new__(cls)
        flow._adopt(parent)
        flow._row, flow.id = row, row["name"]
        return flow

    def _has_run_in(self, ns: str | None) -> bool:
        return ns is None or reads.flow_has_tag(self._ledger, self._row["id"], ns)

    def is_in_namespace(self) -> bool:
        return self._has_run_in(get_namespace())

    def _compute_pathspec(self) -> str:
        return self.id

    def _created_text(self) -> str | None:
        return self._row["created_at"]

    @property
    def origin_pathspec(self) -> str | None:
        return None

    def _runs(
        self, tags: Iterable[str] = (), successful: bool = False, limit: int | None = None
    ) -> list[Run]:
        wanted = list(tags)
        if self._namespace_check:
            wanted.insert(0, self._current_namespace or "")  # a check implies a namespace
        found = reads.flow_runs(
            self._ledger, self._row, tags=wanted, successful=successful, limit=limit
        )
        return [Run._make(self, row, parent=self) for row in found]

    def _children(self) -> list[Run]:
        return self._runs()

    def runs(self, *tags: str) -> Iterator[Run]:
        """Runs in the current namespace having every given tag, newest first."""
        return iter(self._runs(tags))

    def runs_dataframe(self, *tags: str, artifacts: Iterable[str] = (),
                       limit: int | None = None) -> Any:  # fmt: skip
        """The runs having every tag (as `runs(*tags)`) as a pandas DataFrame: run_id,
        status, started_at, finished_at, duration, user, tags, `params.NAME` per parameter
        and a column per named artifact's plain value. One query; needs pandas.

            Flow("TrainFlow").runs_dataframe("nightly", artifacts=["accuracy"])
        """
        from .notebook import runs_dataframe

        return runs_dataframe(self, *tags, artifacts=artifacts, limit=limit)

    @property
    def latest_run(self) -> Run | None:
        """The newest run in the current namespace (maybe still running), or None."""
        found = self._runs(limit=1)
        return found[0] if found else None

    @property
    def latest_successful_run(self) -> Run | None:
        """The newest run in the current namespace whose end step succeeded, or None."""
        found = self._runs(successful=True, limit=1)
        return found[0] if found else None

    def __getitem__(self, run_id: str) -> Run:
        return _open_run(self, self.id, str(run_id), f"{self.id}/{run_id}")._with_parent(self)

    def __contains__(self, run_id: object) -> bool:
        return reads.has_run(self._ledger, self._row["id"], str(run_id))


class Run(MetaflowObject):
    """One execution of a flow: a container of steps, newest first."""

    _NAME = "run"
    _PARTS = 2
    _parent: Flow | None
    _FORM = "Run('FlowName/RunID')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        self._set(_find_run(self._ledger, ids[0], ids[1], requested), None)
        if self._namespace_check and self._current_namespace not in self._tags:
            raise MetaflowNamespaceMismatch(self._current_namespace, requested)

    @classmethod
    def _make(cls, holder: Any, row: dict[str, Any], parent: Flow | None = None) -> Run:
        run = cls.__new__(cls)
        run._adopt(holder)
        run._set(row, parent)
        return run

    def _with_parent(self, parent: Flow) -> Run:
        self._parent = parent
        return self

    def _set(self, row: dict[str, Any], parent: Flow | None) -> None:
        self._row = row
        self._pk = row["pk"]
        self.id = row["run_id"]
        self._parent = parent
        pairs = reads.tag_pairs(row)
        self._set_tags({t for t, s in pairs if not s}, {t for t, s in pairs if s})

    def _set_tags(self, user: set[str], system: set[str]) -> None:
        self._user_tags = frozenset(user)
        self._system_tags = frozenset(system)
        self._tags = self._user_tags | self._system_tags

    @property
    def _run_for_tags(self) -> Run:
        return self

    def _compute_pathspec(self) -> str:
        return f"{self._row['flow']}/{self.id}"

    def _created_text(self) -> str | None:
        return self._row["created_at"]

    @property
    def parent(self) -> Flow:
        if self._parent is None:
            self._parent = Flow(self._row["flow"], ledger=self._ledger, _namespace_check=False)
        return self._parent

    @property
    def origin_pathspec(self) -> str | None:
        origin = self._row["origin_run_id"]
        return f"{self._row['flow']}/{origin}" if origin else None

    # -- steps -----------------------------------------------------------------------------

    def _step_names(self) -> list[str]:
        return reads.step_names(self._ledger, self._pk)

    def _children(self) -> list[Step]:
        steps = [
            Step._make(self, r["step"], r["created_at"])
            for r in reads.step_starts(self._ledger, self._pk)
            if not r["step"].startswith("_")
        ]
        steps.sort(key=lambda s: (s._created or "", s.id), reverse=True)
        return steps

    def steps(self, *tags: str) -> Iterator[Step]:
        """The run's steps, newest first (tags: only if the run has them all)."""
        return self._filtered_children(*tags)

    def __getitem__(self, name: str) -> Step:
        requested = f"{self.pathspec}/{name}"
        row = _find_step_row(self, str(name), requested)
        return Step._make(self, str(name), row["created_at"])

    def __contains__(self, name: object) -> bool:
        return reads.has_step(self._ledger, self._pk, str(name))

    # -- state -----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """running | succeeded | failed | crashed. A run recorded as running whose process
        is gone (same host, no such pid) reads as crashed; the ledger is not changed."""
        return reads.shown_run_status(self._row)

    @property
    def origin_run_id(self) -> str | None:
        """The run this one resumed, or None."""
        return self._row["origin_run_id"]

    @property
    def end_task(self) -> Task | None:
        """The end step's task, or None while (or if) the run has not reached it."""
        return Step._make(self, END_STEP, None).task

    @property
    def successful(self) -> bool:
        """True if the end step succeeded."""
        end = self.end_task
        return end.successful if end is not None else False

    @property
    def finished(self) -> bool:
        """True if the end step finished (a failed or crashed run never does)."""
        end = self.end_task
        return end.finished if end is not None else False

    @property
    def finished_at(self) -> datetime | None:
        """When the end step finished; None if it has not."""
        end = self.end_task
        return end.finished_at if end is not None else None

    @property
    def data(self) -> MetaflowData | None:
        """The end task's data (`run.data.x`), or None if there is no end task."""
        end = self.end_task
        return end.data if end is not None else None

    @property
    def code(self) -> MetaflowCode | None:
        """The flow file's source as it was when the run started, or None."""
        row = reads.run_code(self._ledger, self._pk)
        if row is None or row["code"] is None:
            return None
        return MetaflowCode(self._row["flow"], row["script_name"], row["code"])

    # -- tags ------------------------------------------------------------------------------

    def add_tag(self, tag: str | Iterable[str]) -> None:
        """Add a user tag (a tag that is already a system tag is left alone)."""
        self.replace_tags([], _as_tags(tag))

    def add_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags([], tags)

    def remove_tag(self, tag: str | Iterable[str]) -> None:
        """Remove a user tag; removing a system tag is an error, a missing tag a no-op."""
        self.replace_tags(_as_tags(tag), [])

    def remove_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags(tags, [])

    def replace_tag(
        self, tag_to_remove: str | Iterable[str], tag_to_add: str | Iterable[str]
    ) -> None:
        self.replace_tags(
            _as_tags(tag_to_remove),
            _as_tags(tag_to_add),
        )

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """Remove then add user tags, in one transaction."""
        remove = set(tag_list(tags_to_remove, "tags_to_remove"))
        add = set(tag_list(tags_to_add, "tags_to_add"))
        if not remove and not add:
            raise MetaflowTaggingError("Must add or remove at least one tag")
        with self._ledger.write() as conn:
            existing = conn.execute(
                "select tag, system from tag where run_id = ?", (self._pk,)
            ).fetchall()
            user = {t for t, s in existing if not s}
            system = {t for t, s in existing if s}
            if remove & system:
                raise MetaflowTaggingError(
                    f"Cannot remove a tag that is an existing system tag "
                    f"({sorted(remove & system)}) from run {self.pathspec}"
                )
            new_user = (user - remove) | (add - system)
            if len(new_user) > MAX_USER_TAG_SET_SIZE and len(new_user) > len(user):
                raise MetaflowTaggingError(
                    f"Cannot increase size of tag set beyond {MAX_USER_TAG_SET_SIZE}"
                )
            conn.executemany(
                "delete from tag where run_id = ? and tag = ? and system = 0",
                [(self._pk, t) for t in sorted(user - new_user)],
            )
            conn.executemany(
                "insert or ignore into tag(run_id, tag, system) values (?, ?, 0)",
                [(self._pk, t) for t in sorted(new_user - user)],
            )
        self._set_tags(new_user, system)

    def _repr_html_(self) -> str:
        """Status, durations, the DAG with per-step counts, the end task's artifacts
        (client/notebook.py; nothing is unpickled)."""
        from .notebook import run_html

        return run_html(self)

    @property
    def trigger(self) -> None:
        """None: ledgerflow runs are never started by events (Metaflow's Trigger is for
        deployed flows)."""
        return None


def _as_tags(tag: str | Iterable[str]) -> Iterable[str]:
    """One tag or several, as Metaflow's tag methods take them."""
    return [cast(str, tag)] if is_stringish(tag) else tag


class Step(StepExtras, MetaflowObject):
    """A step of a run: a container of its tasks (several for a foreach), newest first."""

    _NAME = "step"
    _PARTS = 3
    _FORM = "Step('FlowName/RunID/StepName')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        run = _open_run(self, ids[0], ids[1], requested)
        row = _find_step_row(run, ids[2], requested)
        self._set(run, ids[2], row["created_at"])

    @classmethod
    def _make(cls, run: Run, name: str, created: str | None) -> Step:
        step = cls.__new__(cls)
        step._adopt(run)
        step._set(run, name, created)
        return step

    def _set(self, run: Run, name: str, created: str | None) -> None:
        self._run, self.id, self._created = run, name, created

    @property
    def _run_for_tags(self) -> Run:
        return self._run

    @property
    def parent(self) -> Run:
        return self._run

    def _compute_pathspec(self) -> str:
        return f"{self._run.pathspec}/{self.id}"

    def _created_text(self) -> str | None:
        if self._created is None:
            row = reads.step_row(self._ledger, self._run._pk, self.id)
            self._created = row["created_at"] if row else None
        return self._created

    # Iterating a step reads its tasks a page at a time, newest first (reads.step_tasks_page),
    # so the first screen of a 10,000-task foreach costs one short query, not 10,000 Task
    # objects. Pages grow (50, 100, ... 1,000) so a full iteration takes few queries.
    _FIRST_PAGE, _MAX_PAGE = 50, 1000

    def _pages(self, first: int = _FIRST_PAGE) -> Iterator[list[Task]]:
        size = first
        after: tuple[str, int, str] | None = None
        while True:
            rows = reads.step_tasks_page(self._ledger, self._run._pk, self.id, size, after)
            yield [Task._make(self._run, row, step=self) for row in rows]
            if len(rows) < size:
                return
            last = rows[-1]
            after = (last["created_at"], len(last["task_id"]), last["task_id"])
            size = min(size * 2, self._MAX_PAGE)

    def __iter__(self) -> Iterator[Task]:
        for page in self._pages():
            yield from page

    def _children(self) -> list[Task]:
        return list(self)

    @property
    def task(self) -> Task | None:
        """A task of this step: the only one for a linear step (the newest, as Metaflow)."""
        for page in self._pages(first=1):
            return page[0] if page else None
        return None

    def tasks(self, *tags: str) -> Iterator[Task]:
        """The step's tasks, newest first."""
        return self._filtered_children(*tags)

    def __getitem__(self, task_id: str) -> Task:
        requested = f"{self.pathspec}/{task_id}"
        return Task._make(
            self._run, _find_task(self._run, self.id, str(task_id), None, requested), step=self
        )

    def __contains__(self, task_id: object) -> bool:
        return reads.has_task(self._ledger, self._run._pk, self.id, str(task_id))

    @property
    def finished_at(self) -> datetime | None:
        """When the last task finished; None while any task has not."""
        # Over each task's latest attempt, in SQL: a wide step is not loaded for this.
        row = reads.step_finish(self._ledger, self._run._pk, self.id)
        if row is None or not row["n"] or row["done"] < row["n"]:
            return None
        return parse_iso(row["last"])

    def _graph_steps(self) -> dict[str, Any]:
        task = self.task
        return task["_graph_info"].data["steps"] if task is not None else {}

    @property
    def parent_steps(self) -> Iterator[Step]:
        """Steps that lead here in the flow's graph (reads `_graph_info`)."""
        for name, info in self._graph_steps().items():
            if self.id in info["next"] and name in self._run:
                yield self._run[name]

    @property
    def child_steps(self) -> Iterator[Step]:
        """Steps this one leads to in the flow's graph (reads `_graph_info`)."""
        info = self._graph_steps().get(self.id, {})
        for name in info.get("next", []):
            if name in self._run:
                yield self._run[name]


class Task(TaskExtras, MetaflowObject):
    """One task (its highest attempt, unless built with attempt=N): a container of its
    public artifacts."""

    _NAME = "task"
    _PARTS = 4
    _FORM = "Task('FlowName/RunID/StepName/TaskID')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        run = _open_run(self, ids[0], ids[1], requested)
        self._set(run, _find_task(run, ids[2], ids[3], self._attempt, requested), None)

    @classmethod
    def _make(
        cls, run: Run, row: dict[str, Any], step: Step | None = None, holder: Any = None
    ) -> Task:
        task = cls.__new__(cls)
        task._adopt(holder if holder is not None else run)
        task._set(run, row, step)
        return task

    def _set(self, run: Run, row: dict[str, Any], step: Step | None) -> None:
        self._run, self._row, self._step = run, row, step
        self._pk = row["pk"]
        self.id = row["task_id"]

    @property
    def _run_for_tags(self) -> Run:
        return self._run

    @property
    def parent(self) -> Step:
        if self._step is None:
            self._step = Step._make(self._run, self._row["step"], None)
        return self._step

    def _compute_pathspec(self) -> str:
        return f"{self._run.pathspec}/{self._row['step']}/{self.id}"

    def _created_text(self) -> str | None:
        return self._row["created_at"]

    @property
    def origin_pathspec(self) -> str | None:
        return self._row["origin_pathspec"]

    # -- artifacts -------------------------------------------------------------------------

    def _artifact_rows(self) -> list[dict[str, Any]]:
        return reads.task_artifacts(self._ledger, self._pk)

    def _children(self) -> list[DataArtifact]:
        return [
            DataArtifact._make(self, row)
            for row in self._artifact_rows()
            if not row["name"].startswith("_")
        ]

    def __getitem__(self, name: str) -> DataArtifact:
        """The artifact `name` (private ones such as '_graph_info' too)."""
        return DataArtifact._make(self, _find_artifact(self, name, f"{self.pathspec}/{name}"))

    def __contains__(self, name: object) -> bool:
        if name in INTERNAL_ARTIFACTS:
            return True
        return reads.has_artifact(self._ledger, self._pk, str(name))

    @property
    def data(self) -> MetaflowData:
        """`task.data.x`: the value of artifact x, loaded on access."""
        return MetaflowData(self._children(), _owner=f"task {self.pathspec}")

    @property
    def artifacts(self) -> Any:
        """`task.artifacts.x`: the DataArtifact x; iterable, like Metaflow's namedtuple."""
        arts = self._children()
        fields = namedtuple("MetaflowArtifacts", [a.id for a in arts])  # type: ignore[misc]
        return fields._make(arts)

    # -- state -----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """succeeded | failed | caught | running | crashed | interrupted. A running task of a
        crashed run reads as crashed."""
        status = self._row["status"]
        # The run's status is looked at only for a task still recorded as running.
        return reads.shown_task_status(status, self._run.status) if status == "running" else status

    @property
    def successful(self) -> bool:
        return self._row["status"] == "succeeded"

    @property
    def finished(self) -> bool:
        return self._row["status"] in ("succeeded", "caught")

    @property
    def exception(self) -> MetaflowExceptionWrapper | None:
        """What the step raised (`.type`, `.exception`, `.stacktrace`), or None."""
        if self._row["exception_type"] is None:
            return None
        traceback = reads.task_traceback(self._ledger, self._pk)
        wrapper = MetaflowExceptionWrapper()
        wrapper.type = self._row["exception_type"]
        wrapper.exception = self._row["exception"] or ""
        wrapper.stacktrace = traceback
        wrapper.args = (wrapper.exception,)
        return wrapper

    @property
    def index(self) -> int | None:
        """Index in the innermost foreach; None outside a foreach."""
        return self._row["foreach_index"]

    @property
    def foreach_stack(self) -> list[ForeachFrame]:
        """One frame per enclosing foreach, outermost first: (step, var, num_splits, index,
        value), where value is the item's repr."""
        from ..exceptions import LedgerError
        from ..identify import stored_json

        stack = stored_json(self._row["foreach_stack"], f"{self.pathspec}'s foreach_stack", [])
        try:
            return [ForeachFrame(*frame) for frame in stack]
        except TypeError:
            raise LedgerError(
                f"{self.pathspec}'s foreach_stack in the ledger is malformed; "
                "the file is damaged: run `ledgerflow doctor`"
            ) from None

    @property
    def finished_at(self) -> datetime | None:
        return parse_iso(self._row["finished_at"])

    @property
    def current_attempt(self) -> int:
        return int(self._row["attempt"])

    @property
    def runtime_name(self) -> str | None:
        for tag in self.tags:
            if tag.startswith("runtime:"):
                return tag.split(":", 1)[1]
        return None

    @property
    def code(self) -> MetaflowCode | None:
        return self._run.code

    # -- logs ------------------------------------------------------------------------------

    @property
    def stdout(self) -> str:
        return _whole_lines(reads.log_text(self._ledger, self._pk, "stdout"))

    @property
    def stderr(self) -> str:
        return _whole_lines(reads.log_text(self._ledger, self._pk, "stderr"))

    @property
    def stdout_size(self) -> int:
        return reads.log_size(self._ledger, self._pk, "stdout")

    @property
    def stderr_size(self) -> int:
        return reads.log_size(self._ledger, self._pk, "stderr")

    # -- lineage ---------------------------------------------------------------------------

    def _related(self, parents: bool) -> list[tuple[str, str]]:
        return reads.related_tasks(self._ledger, self._run._pk, self._row["step"], self.id, parents)

    def _tasks_at(self, pairs: list[tuple[str, str]]) -> Iterator[Task]:
        for step, task_id in pairs:
            requested = f"{self._run.pathspec}/{step}/{task_id}"
            yield Task._make(self._run, _find_task(self._run, step, task_id, None, requested))

    @property
    def parent_task_pathspecs(self) -> Iterator[str]:
        for step, task_id in self._related(parents=True):
            yield f"{self._run.pathspec}/{step}/{task_id}"

    @property
    def child_task_pathspecs(self) -> Iterator[str]:
        for step, task_id in self._related(parents=False):
            yield f"{self._run.pathspec}/{step}/{task_id}"

    @property
    def parent_tasks(self) -> Iterator[Task]:
        """The tasks whose output this task started from (several for a join)."""
        return self._tasks_at(self._related(parents=True))

    @property
    def child_tasks(self) -> Iterator[Task]:
        """The tasks that started from this task's output."""
        return self._tasks_at(self._related(parents=False))

    # -- metadata --------------------------------------------------------------------------

    @property
    def metadata_dict(self) -> dict[str, str]:
        """Facts about this task, with Metaflow's key names where it has them: for each
        name, its newest value (the latest attempt's `attempt`, `attempt_ok`, ...)."""
        return {m.name: m.value for m in self.metadata}

    @property
    def metadata(self) -> list[Metadata]:
        """Metaflow's list of Metadata(name, value, created_at, type, task), oldest first.
        As in Metaflow, every attempt has its own `attempt` entry (and `attempt_ok` and
        `attempt-done` once it ended): a task that failed twice then succeeded lists
        attempts 0, 1 and 2. `Task(..., attempt=N)` lists only attempt N's."""
        from ..attempts import attempt_facts

        row = self._row
        attempts = [row]
        if self._attempt is None and row["attempt"]:
            attempts = reads.task_attempts(self._ledger, self._run._pk, row["step"], self.id)
            attempts = [a for a in attempts if a["attempt"] <= row["attempt"]]
        found = []
        for attempt in attempts:
            ts = _millis(attempt["started_at"])
            found += [Metadata(name, str(value), ts, kind, self)
                      for name, value, kind in attempt_facts(attempt)]  # fmt: skip
        ts = _millis(row["started_at"])
        found += [Metadata(k, v, ts, k, self) for k, v in self._task_facts().items()]
        return found

    def _task_facts(self) -> dict[str, str]:
        run, row = self._run._row, self._row
        facts: dict[str, Any] = {
            "status": self.status,
            "user": run["user"],
            "runtime": self.runtime_name,
            "python_version": run["python_version"],
            "ledgerflow_version": run["ledgerflow_version"],
            "script-name": run["script_name"],
            "host": row["host"] or run["host"],  # a Dask worker's, or the run's machine
            "ledger": self._ledger.path,
            "origin-run-id": run["origin_run_id"],
        }
        if row["origin_pathspec"]:
            # Cloned by resume, or reused (`run --reuse`): from the run the pathspec names,
            # which for a reused task need not be the run's own origin.
            origin = row["origin_pathspec"].split("/")
            facts["origin-run-id"] = origin[1] if len(origin) == 4 else facts["origin-run-id"]
            facts["origin-task-id"] = origin[-1]
        stack = self.foreach_stack
        if stack:
            facts["foreach-execution-path"] = ",".join(f"{f.step}:{f.index}" for f in stack)
        return {k: str(v) for k, v in facts.items() if v is not None}

    def _repr_html_(self) -> str:
        from .notebook import task_html  # status, attempts, foreach input, artifacts

        return task_html(self)


def _millis(stamp: str | None) -> int | None:
    """A stored time as Metaflow's metadata gives it: milliseconds since the epoch."""
    when = parse_iso(stamp)
    return int(when.timestamp() * 1000) if when else None


class DataArtifact(MetaflowObject):
    """One artifact of a task. `.data` decodes it: a fresh object on every access."""

    _NAME = "artifact"
    _PARTS = 5
    _FORM = "DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        run = _open_run(self, ids[0], ids[1], requested)
        task = Task._make(
            run, _find_task(run, ids[2], ids[3], self._attempt, requested), holder=self
        )
        self._set(task, _find_artifact(task, ids[4], requested))

    @classmethod
    def _make(cls, task: Task, row: dict[str, Any]) -> DataArtifact:
        art = cls.__new__(cls)
        art._adopt(task)
        art._set(task, row)
        return art

    def _set(self, task: Task, row: dict[str, Any]) -> None:
        self._task, self._row, self.id = task, row, row["name"]

    @property
    def _run_for_tags(self) -> Run:
        return self._task._run

    @property
    def parent(self) -> Task:
        return self._task

    def _compute_pathspec(self) -> str:
        return f"{self._task.pathspec}/{self.id}"

    def _created_text(self) -> str | None:
        return self._task._row["finished_at"] or self._task._row["started_at"]

    @property
    def data(self) -> Any:
        """The value, decoded from the ledger (a new object each time). A pickle written on
        another machine needs ledgerflow.trust() first (see ledgerflow/trust_store.py)."""
        computed = self._row.get("computed")
        if computed is not None:  # an internal artifact built from the task's columns
            return computed()
        # The trust check runs on the encoding of the blob actually decoded, never on the
        # artifact row's label (which a hostile ledger may set to 'json').
        run_pk = self._task._run._row["pk"]
        return self._ledger.load(
            self._row["sha"],
            before_unpickle=lambda: require_trust(self._ledger, run_pk, self.pathspec),
        )

    @property
    def sha(self) -> str:
        """SHA-256 of the value's stored encoding."""
        return self._row["sha"]

    @property
    def size(self) -> int:
        """Bytes of the value's encoding (before compression)."""
        return int(self._row["size"])

    @property
    def encoding(self) -> str:
        """'json' or 'pickle'."""
        return self._row["encoding"]

    @property
    def type(self) -> str:
        """'module.Qualname' of the value's type, e.g. 'builtins.dict'."""
        return self._row["type"]

    @property
    def inherited(self) -> bool:
        """True if the task passed this artifact on unchanged from a parent."""
        return bool(self._row["inherited"])

    @property
    def finished_at(self) -> datetime | None:
        """Alias of created_at: when the task that holds it finished."""
        return self.created_at


def _whole_lines(text: str | None) -> str:
    """A log as Metaflow's `Task.stdout` gives it: each line ends with a newline, the last
    one too when the task's output did not (a `print(..., end="")` last)."""
    if not text:
        return ""
    return text if text.endswith("\n") else text + "\n"
