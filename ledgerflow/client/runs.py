"""`Metaflow`, `Flow` and `Run`: the top of the tree. Runs are listed newest first and
filtered by the namespace with indexed SQL; run tags are changed in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, cast

from .. import reads
from ..exceptions import MetaflowNamespaceMismatch, MetaflowTaggingError
from ..tags import MAX_USER_TAG_SET_SIZE, is_stringish, tag_list
from . import context
from .base import (
    END_STEP,
    MetaflowObject,
    _find_run,
    _find_step_row,
    _no_flow_detail,
    _not_found,
)
from .extras import MetaflowCode, MetaflowData
from .tasks import Step, Task


class Metaflow:
    """Entry point: the flows in the ledger that have a run in the current namespace."""

    def __init__(
        self, ledger: context.LedgerLike | None = None, _current_metadata: str | None = None
    ):
        self._ledger = context.resolve_ledger(ledger if ledger is not None else _current_metadata)
        self._attempt = None

    @property
    def _current_namespace(self) -> str | None:
        return context.get_namespace()

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
        return self._has_run_in(context.get_namespace())

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
        return self._open_run(self.id, str(run_id), f"{self.id}/{run_id}")._with_parent(self)

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
