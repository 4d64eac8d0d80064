"""Metaflow's client objects (`Metaflow`, `Flow`, `Run`, `Step`, `Task`, `DataArtifact`),
each answered by a few indexed SQL lookups on the ledger.

Building objects and listing them reads rows only; nothing is decoded until `.data` is
read on a `DataArtifact` (or an attribute of `task.data`), which decodes that one blob.
Tasks have one row per attempt: a `Task` shows its highest attempt unless built with
`attempt=N`. Iteration is newest first, as in Metaflow.
"""

from __future__ import annotations

import json
from collections import namedtuple
from datetime import datetime
from typing import Any, Iterable, Iterator, Optional

from ..clock import parse_iso
from ..exceptions import MetaflowInvalidPathspec, MetaflowNamespaceMismatch, MetaflowNotFound
from ..flowspec import ForeachFrame
from ..ledger import Ledger
from . import _db, context
from .extras import (
    MAX_USER_TAG_SET_SIZE,
    Metadata,
    MetaflowCode,
    MetaflowData,
    MetaflowExceptionWrapper,
    MetaflowTaggingError,
    html_table,
    is_stringish,
    tag_list,
)

END_STEP = "end"  # ledgerflow's graph always ends at 'end'

_RUN_SELECT = """
select r.id as pk, f.name as flow, r.run_id as run_id, r.status as status,
       r.created_at as created_at, r.finished_at as finished_at, r.user as user,
       r.host as host, r.pid as pid, r.script_name as script_name,
       r.origin_run_id as origin_run_id, r.python_version as python_version,
       r.ledgerflow_version as ledgerflow_version,
       (select json_group_array(json_array(g.tag, g.system)) from tag g where g.run_id = r.id)
           as tags
from flow f join run r on r.flow_id = f.id
"""

_TASK_COLS = """t.id as pk, t.step as step, t.task_id as task_id, t.attempt as attempt,
       t.status as status, t.started_at as started_at, t.finished_at as finished_at,
       t.foreach_index as foreach_index, t.foreach_stack as foreach_stack,
       t.exception_type as exception_type, t.exception as exception,
       t.origin_pathspec as origin_pathspec"""

_ARTIFACT_SELECT = """
select a.name as name, a.sha as sha, a.encoding as encoding, a.type as type, a.size as size,
       a.inherited as inherited
from artifact a
"""


def _id_key(task_id: str) -> tuple[int, str]:
    """Numeric order for digit ids ('2' < '10')."""
    return (len(task_id), task_id)


def _not_found(pathspec: str, ledger: Ledger, detail: str) -> MetaflowNotFound:
    return MetaflowNotFound(f"{pathspec} does not exist in ledger {ledger.path}; {detail}")


def _listing(names: Iterable[str], limit: int = 10) -> str:
    names = list(names)
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return shown or "none"


def _check_attempt(kind: str, attempt: Any) -> int | None:
    if attempt is None:
        return None
    if kind not in ("task", "artifact"):
        raise MetaflowNotFound("Attempts can only be specified for Task or DataArtifact")
    try:
        attempt = int(attempt)
    except (TypeError, ValueError):
        raise MetaflowNotFound(f"Attempt can only be an integer, got {attempt!r}") from None
    if attempt < 0:
        raise MetaflowNotFound("Attempt can only be non-negative")
    return attempt


class MetaflowObject:
    """Base of Flow, Run, Step, Task and DataArtifact: built from a pathspec, or from its
    parent (iteration, `parent[id]`). Equal when they name the same object in the same
    ledger."""

    _NAME = "base"
    _PARTS = 0
    _FORM = ""

    id: str
    _ledger: Ledger
    _attempt: int | None
    _current_namespace: str | None
    _namespace_check: bool

    def __init__(
        self,
        pathspec: str | None = None,
        attempt: int | None = None,
        *,
        ledger: context.LedgerLike | None = None,
        _namespace_check: bool = True,
        _current_namespace: str | None = None,
    ):
        self._attempt = _check_attempt(self._NAME, attempt)
        ids = self._split(pathspec)
        self._ledger = context.resolve_ledger(ledger)
        self._current_namespace = _current_namespace or context.get_namespace()
        self._namespace_check = bool(_namespace_check) and self._current_namespace is not None
        self._pathspec = None
        self._lookup(ids, "/".join(ids))

    @classmethod
    def _split(cls, pathspec: Any) -> list[str]:
        if not isinstance(pathspec, str):
            raise MetaflowInvalidPathspec(
                f"{cls.__name__} needs a pathspec string, got {pathspec!r}; expects {cls._FORM}"
            )
        ids = pathspec.split("/")
        if len(ids) != cls._PARTS or not all(ids):
            raise MetaflowInvalidPathspec(f"Invalid pathspec {pathspec!r}: expects {cls._FORM}")
        return ids

    def _lookup(self, ids: list[str], requested: str) -> None:
        raise NotImplementedError

    def _adopt(self, parent: Any) -> None:
        """Share the parent's ledger and namespace (building a child without a lookup)."""
        self._ledger = parent._ledger
        self._current_namespace = parent._current_namespace
        self._namespace_check = parent._namespace_check
        self._attempt = parent._attempt if self._NAME in ("task", "artifact") else None
        self._pathspec = None

    def _open_run(self, flow: str, run_id: str, requested: str) -> "Run":
        run = Run._make(self, _find_run(self._ledger, flow, run_id, requested))
        if self._namespace_check and self._current_namespace not in run._tags:
            raise MetaflowNamespaceMismatch(self._current_namespace, requested)
        return run

    # -- identity -------------------------------------------------------------------------

    @property
    def pathspec(self) -> str:
        """'Flow/RunID/StepName/TaskID/...' naming this object."""
        if self._pathspec is None:
            self._pathspec = self._compute_pathspec()
        return self._pathspec

    def _compute_pathspec(self) -> str:
        raise NotImplementedError

    @property
    def path_components(self) -> list[str]:
        return self.pathspec.split("/")

    def __str__(self) -> str:
        if self._attempt is not None:
            return "%s('%s', attempt=%d)" % (type(self).__name__, self.pathspec, self._attempt)
        return "%s('%s')" % (type(self).__name__, self.pathspec)

    __repr__ = __str__

    def _key(self) -> tuple[Any, ...]:
        return (type(self).__name__, str(self._ledger.path), self.pathspec, self._attempt)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetaflowObject):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": "ledgerflow-1",
            "data": [
                self.pathspec,
                self._attempt,
                str(self._ledger.path),
                self._ledger.readonly,
                self._current_namespace,
                self._namespace_check,
            ],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        pathspec, attempt, path, readonly, ns, check = state["data"]
        ledger = context.open_ledger_file(path, readonly)
        MetaflowObject.__init__(
            self, pathspec, attempt, ledger=ledger, _namespace_check=check, _current_namespace=ns
        )

    # -- tags and namespace --------------------------------------------------------------------

    @property
    def _run_for_tags(self) -> Optional["Run"]:
        return None

    @property
    def tags(self) -> frozenset[str]:
        """The run's tags, user and system."""
        run = self._run_for_tags
        return run._tags if run is not None else frozenset()

    @property
    def system_tags(self) -> frozenset[str]:
        run = self._run_for_tags
        return run._system_tags if run is not None else frozenset()

    @property
    def user_tags(self) -> frozenset[str]:
        run = self._run_for_tags
        return run._user_tags if run is not None else frozenset()

    def is_in_namespace(self) -> bool:
        """True if this object is in the current namespace (always, for namespace None)."""
        ns = context.get_namespace()
        return ns is None or ns in self.tags

    # -- children ---------------------------------------------------------------------------------

    def _children(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(self._children())

    def _filtered_children(self, *tags: str) -> Iterator[Any]:
        for child in self:
            if all(tag in child.tags for tag in tags):
                yield child

    def _ipython_key_completions_(self) -> list[str]:
        return [child.id for child in self]

    # -- times ------------------------------------------------------------------------------------

    @property
    def created_at(self) -> datetime | None:
        """When this object came to be (naive local time, as Metaflow)."""
        return parse_iso(self._created_text())

    def _created_text(self) -> str | None:
        raise NotImplementedError

    @property
    def origin_pathspec(self) -> str | None:
        """The pathspec of the object this one was cloned from by a resume, else None."""
        parent = self.parent
        origin = parent.origin_pathspec if parent is not None else None
        return f"{origin}/{self.id}" if origin else None

    @property
    def parent(self) -> Any:
        return None


# -- lookups shared by direct construction and parent[id] --------------------------------------


def _find_run(ledger: Ledger, flow: str, run_id: str, requested: str) -> dict[str, Any]:
    row = _db.one(ledger, _RUN_SELECT + " where f.name = ? and r.run_id = ?", (flow, run_id))
    if row is not None:
        return row
    flow_row = _db.one(ledger, "select id from flow where name = ?", (flow,))
    if flow_row is None:
        raise _not_found(requested, ledger, _no_flow_detail(ledger, flow))
    recent = _db.rows(
        ledger,
        "select run_id from run where flow_id = ? order by created_at desc limit 3",
        (flow_row["id"],),
    )
    runs = ", ".join(r["run_id"] for r in recent)
    detail = f"flow {flow} has no run '{run_id}'" + (
        f" (latest runs: {runs})" if runs else " (it has no runs)"
    )
    raise _not_found(requested, ledger, detail)


def _no_flow_detail(ledger: Ledger, flow: str) -> str:
    names = [r["name"] for r in _db.rows(ledger, "select name from flow order by name limit 11")]
    return f"there is no flow named '{flow}' (flows there: {_listing(names)})"


def _find_step_row(run: "Run", step: str, requested: str) -> dict[str, Any]:
    row = _db.one(
        run._ledger,
        "select min(started_at) as created_at, count(*) as n from task"
        " where run_id = ? and step = ?",
        (run._pk, step),
    )
    if row is None or not row["n"]:
        raise _not_found(
            requested,
            run._ledger,
            f"run {run.pathspec} has no step '{step}' (its steps: {_listing(run._step_names())})",
        )
    return row


def _find_task(
    run: "Run", step: str, task_id: str, attempt: int | None, requested: str
) -> dict[str, Any]:
    sql = (
        f"select {_TASK_COLS}, (select min(t0.started_at) from task t0"
        " where t0.run_id = t.run_id and t0.step = t.step and t0.task_id = t.task_id)"
        " as created_at from task t where t.run_id = ? and t.step = ? and t.task_id = ?"
    )
    params: list[Any] = [run._pk, step, task_id]
    if attempt is None:
        sql += " order by t.attempt desc limit 1"
    else:
        sql += " and t.attempt = ?"
        params.append(attempt)
    row = _db.one(run._ledger, sql, params)
    if row is not None:
        return row
    ledger = run._ledger
    attempts = _db.rows(
        ledger,
        "select attempt from task where run_id = ? and step = ? and task_id = ? order by attempt",
        (run._pk, step, task_id),
    )
    if attempts:
        listed = _listing(str(a["attempt"]) for a in attempts)
        detail = f"task {run.pathspec}/{step}/{task_id} has no attempt {attempt} (attempts: {listed})"
    elif step in run:
        ids = sorted(
            {r["task_id"] for r in _db.rows(
                ledger, "select task_id from task where run_id = ? and step = ?", (run._pk, step)
            )},
            key=_id_key,
        )  # fmt: skip
        detail = f"step {run.pathspec}/{step} has no task '{task_id}' (its tasks: {_listing(ids)})"
    else:
        detail = f"run {run.pathspec} has no step '{step}' (its steps: {_listing(run._step_names())})"
    raise _not_found(requested, ledger, detail)


def _find_artifact(task: "Task", name: str, requested: str) -> dict[str, Any]:
    row = _db.one(task._ledger, _ARTIFACT_SELECT + " where a.task_id = ? and a.name = ?",
                  (task._pk, name))  # fmt: skip
    if row is not None:
        return row
    names = [a.id for a in task._children()]
    detail = f"task {task.pathspec} has no artifact '{name}' (its artifacts: {_listing(names, 20)})"
    raise _not_found(requested, task._ledger, detail)


# -- the objects ----------------------------------------------------------------------------------


class Metaflow:
    """Entry point: the flows in the ledger that have a run in the current namespace."""

    def __init__(self, ledger: context.LedgerLike | None = None, _current_metadata: str | None = None):
        self._ledger = context.resolve_ledger(ledger if ledger is not None else _current_metadata)
        self._attempt = None

    @property
    def _current_namespace(self) -> str | None:
        return context.get_namespace()

    @property
    def _namespace_check(self) -> bool:
        return self._current_namespace is not None

    @property
    def flows(self) -> list["Flow"]:
        """Every flow with at least one run in the current namespace, by name."""
        return list(self)

    def __iter__(self) -> Iterator["Flow"]:
        ns = self._current_namespace
        sql = "select f.id as id, f.name as name, f.created_at as created_at from flow f"
        params: tuple[Any, ...] = ()
        if ns is not None:
            sql += (
                " where exists (select 1 from tag g join run r on r.id = g.run_id"
                " where g.tag = ? and r.flow_id = f.id)"
            )
            params = (ns,)
        for row in _db.rows(self._ledger, sql + " order by f.name", params):
            yield Flow._make(self, row)

    def __getitem__(self, name: str) -> "Flow":
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
        row = _db.one(
            self._ledger,
            "select id as id, name as name, created_at as created_at from flow where name = ?",
            (ids[0],),
        )
        if row is None:
            raise _not_found(requested, self._ledger, _no_flow_detail(self._ledger, ids[0]))
        self._row = row
        self.id = row["name"]
        if self._namespace_check and not self._has_run_in(self._current_namespace):
            raise MetaflowNamespaceMismatch(self._current_namespace, requested)

    @classmethod
    def _make(cls, parent: Any, row: dict[str, Any]) -> "Flow":
        flow = cls.__new__(cls)
        flow._adopt(parent)
        flow._row, flow.id = row, row["name"]
        return flow

    def _has_run_in(self, ns: str | None) -> bool:
        return ns is None or bool(_db.one(
            self._ledger,
            "select 1 as found from tag g join run r on r.id = g.run_id"
            " where g.tag = ? and r.flow_id = ? limit 1",
            (ns, self._row["id"]),
        ))  # fmt: skip

    def is_in_namespace(self) -> bool:
        return self._has_run_in(context.get_namespace())

    def _compute_pathspec(self) -> str:
        return self.id

    def _created_text(self) -> str | None:
        return self._row["created_at"]

    @property
    def origin_pathspec(self) -> str | None:
        return None

    def _runs(self, tags: Iterable[str] = (), successful: bool = False,
              limit: int | None = None) -> list["Run"]:  # fmt: skip
        sql = _RUN_SELECT + " where f.id = ?"
        params: list[Any] = [self._row["id"]]
        wanted = list(tags)
        if self._namespace_check:
            wanted.insert(0, self._current_namespace)
        for i, tag in enumerate(dict.fromkeys(wanted)):
            sql += f" and exists (select 1 from tag w{i} where w{i}.run_id = r.id and w{i}.tag = ?)"
            params.append(tag)
        if successful:
            sql += (
                " and exists (select 1 from task e where e.run_id = r.id and e.step = ?"
                " and e.status = 'succeeded')"
            )
            params.append(END_STEP)
        sql += " order by r.created_at desc, r.run_id desc"
        if limit is not None:
            sql += f" limit {int(limit)}"
        return [Run._make(self, row, parent=self) for row in _db.rows(self._ledger, sql, params)]

    def _children(self) -> list["Run"]:
        return self._runs()

    def runs(self, *tags: str) -> Iterator["Run"]:
        """Runs in the current namespace having every given tag, newest first."""
        return iter(self._runs(tags))

    @property
    def latest_run(self) -> Optional["Run"]:
        """The newest run in the current namespace (maybe still running), or None."""
        found = self._runs(limit=1)
        return found[0] if found else None

    @property
    def latest_successful_run(self) -> Optional["Run"]:
        """The newest run in the current namespace whose end step succeeded, or None."""
        found = self._runs(successful=True, limit=1)
        return found[0] if found else None

    def __getitem__(self, run_id: str) -> "Run":
        return self._open_run(self.id, str(run_id), f"{self.id}/{run_id}")._with_parent(self)

    def __contains__(self, run_id: object) -> bool:
        return bool(_db.one(
            self._ledger, "select 1 as found from run where flow_id = ? and run_id = ?",
            (self._row["id"], str(run_id)),
        ))  # fmt: skip


class Run(MetaflowObject):
    """One execution of a flow: a container of steps, newest first."""

    _NAME = "run"
    _PARTS = 2
    _FORM = "Run('FlowName/RunID')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        self._set(_find_run(self._ledger, ids[0], ids[1], requested), None)
        if self._namespace_check and self._current_namespace not in self._tags:
            raise MetaflowNamespaceMismatch(self._current_namespace, requested)

    @classmethod
    def _make(cls, holder: Any, row: dict[str, Any], parent: Flow | None = None) -> "Run":
        run = cls.__new__(cls)
        run._adopt(holder)
        run._set(row, parent)
        return run

    def _with_parent(self, parent: Flow) -> "Run":
        self._parent = parent
        return self

    def _set(self, row: dict[str, Any], parent: Flow | None) -> None:
        self._row = row
        self._pk = row["pk"]
        self.id = row["run_id"]
        self._parent = parent
        pairs = json.loads(row["tags"] or "[]")
        self._set_tags({t for t, s in pairs if not s}, {t for t, s in pairs if s})

    def _set_tags(self, user: set[str], system: set[str]) -> None:
        self._user_tags = frozenset(user)
        self._system_tags = frozenset(system)
        self._tags = self._user_tags | self._system_tags

    @property
    def _run_for_tags(self) -> "Run":
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

    # -- steps ------------------------------------------------------------------------------

    def _step_names(self) -> list[str]:
        found = _db.rows(self._ledger, "select distinct step from task where run_id = ?", (self._pk,))
        return sorted(r["step"] for r in found)

    def _children(self) -> list["Step"]:
        found = _db.rows(
            self._ledger,
            "select step as step, min(started_at) as created_at from task"
            " where run_id = ? group by step",
            (self._pk,),
        )
        steps = [Step._make(self, r["step"], r["created_at"]) for r in found
                 if not r["step"].startswith("_")]  # fmt: skip
        steps.sort(key=lambda s: (s._created or "", s.id), reverse=True)
        return steps

    def steps(self, *tags: str) -> Iterator["Step"]:
        """The run's steps, newest first (tags: only if the run has them all)."""
        return self._filtered_children(*tags)

    def __getitem__(self, name: str) -> "Step":
        requested = f"{self.pathspec}/{name}"
        row = _find_step_row(self, str(name), requested)
        return Step._make(self, str(name), row["created_at"])

    def __contains__(self, name: object) -> bool:
        return bool(_db.one(
            self._ledger, "select 1 as found from task where run_id = ? and step = ? limit 1",
            (self._pk, str(name)),
        ))  # fmt: skip

    # -- state --------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """running | succeeded | failed | crashed. A run recorded as running whose process
        is gone (same host, no such pid) reads as crashed; the ledger is not changed."""
        status = self._row["status"]
        if status == "running" and context.process_gone(self._row["host"], self._row["pid"]):
            return "crashed"
        return status

    @property
    def origin_run_id(self) -> str | None:
        """The run this one resumed, or None."""
        return self._row["origin_run_id"]

    @property
    def end_task(self) -> Optional["Task"]:
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
        row = _db.one(self._ledger, "select code, script_name from run where id = ?", (self._pk,))
        if row is None or row["code"] is None:
            return None
        return MetaflowCode(self._row["flow"], row["script_name"], row["code"])

    # -- tags -----------------------------------------------------------------------------------

    def add_tag(self, tag: str | Iterable[str]) -> None:
        """Add a user tag (a tag that is already a system tag is left alone)."""
        self.replace_tags([], [tag] if is_stringish(tag) else tag)

    def add_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags([], tags)

    def remove_tag(self, tag: str | Iterable[str]) -> None:
        """Remove a user tag; removing a system tag is an error, a missing tag a no-op."""
        self.replace_tags([tag] if is_stringish(tag) else tag, [])

    def remove_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags(tags, [])

    def replace_tag(self, tag_to_remove: str | Iterable[str], tag_to_add: str | Iterable[str]) -> None:
        self.replace_tags(
            [tag_to_remove] if is_stringish(tag_to_remove) else tag_to_remove,
            [tag_to_add] if is_stringish(tag_to_add) else tag_to_add,
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
        return html_table(str(self), [
            ("status", self.status),
            ("created_at", self.created_at),
            ("finished_at", self._row["finished_at"] and parse_iso(self._row["finished_at"])),
            ("user", self._row["user"]),
            ("user tags", ", ".join(sorted(self.user_tags))),
            ("system tags", ", ".join(sorted(self.system_tags))),
            ("steps", ", ".join(reversed([s.id for s in self]))),
        ])  # fmt: skip


class Step(MetaflowObject):
    """A step of a run: a container of its tasks (several for a foreach), newest first."""

    _NAME = "step"
    _PARTS = 3
    _FORM = "Step('FlowName/RunID/StepName')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        run = self._open_run(ids[0], ids[1], requested)
        row = _find_step_row(run, ids[2], requested)
        self._set(run, ids[2], row["created_at"])

    @classmethod
    def _make(cls, run: Run, name: str, created: str | None) -> "Step":
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
            row = _db.one(self._ledger, "select min(started_at) as created_at from task"
                          " where run_id = ? and step = ?", (self._run._pk, self.id))  # fmt: skip
            self._created = row["created_at"] if row else None
        return self._created

    def _children(self) -> list["Task"]:
        found = _db.rows(
            self._ledger,
            f"select {_TASK_COLS} from task t where t.run_id = ? and t.step = ?"
            " order by t.task_id, t.attempt",
            (self._run._pk, self.id),
        )
        latest: dict[str, dict[str, Any]] = {}
        first: dict[str, str] = {}
        for row in found:
            latest[row["task_id"]] = row  # attempts ascend: the last one wins
            first.setdefault(row["task_id"], row["started_at"])
            first[row["task_id"]] = min(first[row["task_id"]], row["started_at"])
        tasks = [Task._make(self._run, {**row, "created_at": first[tid]}, step=self)
                 for tid, row in latest.items()]  # fmt: skip
        tasks.sort(key=lambda t: (t._row["created_at"] or "", _id_key(t.id)), reverse=True)
        return tasks

    @property
    def task(self) -> Optional["Task"]:
        """A task of this step: the only one for a linear step (the newest, as Metaflow)."""
        for t in self:
            return t
        return None

    def tasks(self, *tags: str) -> Iterator["Task"]:
        """The step's tasks, newest first."""
        return self._filtered_children(*tags)

    def __getitem__(self, task_id: str) -> "Task":
        requested = f"{self.pathspec}/{task_id}"
        return Task._make(self._run, _find_task(self._run, self.id, str(task_id), None, requested),
                          step=self)  # fmt: skip

    def __contains__(self, task_id: object) -> bool:
        return bool(_db.one(
            self._ledger,
            "select 1 as found from task where run_id = ? and step = ? and task_id = ? limit 1",
            (self._run._pk, self.id, str(task_id)),
        ))  # fmt: skip

    @property
    def finished_at(self) -> datetime | None:
        """When the last task finished; None while any task has not."""
        times = [t._row["finished_at"] for t in self]
        if not times or any(x is None for x in times):
            return None
        return parse_iso(max(times))

    def _graph_steps(self) -> dict[str, Any]:
        task = self.task
        return task["_graph_info"].data["steps"] if task is not None else {}

    @property
    def parent_steps(self) -> Iterator["Step"]:
        """Steps that lead here in the flow's graph (reads `_graph_info`)."""
        for name, info in self._graph_steps().items():
            if self.id in info["next"] and name in self._run:
                yield self._run[name]

    @property
    def child_steps(self) -> Iterator["Step"]:
        """Steps this one leads to in the flow's graph (reads `_graph_info`)."""
        info = self._graph_steps().get(self.id, {})
        for name in info.get("next", []):
            if name in self._run:
                yield self._run[name]


class Task(MetaflowObject):
    """One task (its highest attempt, unless built with attempt=N): a container of its
    public artifacts."""

    _NAME = "task"
    _PARTS = 4
    _FORM = "Task('FlowName/RunID/StepName/TaskID')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        run = self._open_run(ids[0], ids[1], requested)
        self._set(run, _find_task(run, ids[2], ids[3], self._attempt, requested), None)

    @classmethod
    def _make(cls, run: Run, row: dict[str, Any], step: Step | None = None,
              holder: Any = None) -> "Task":  # fmt: skip
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

    # -- artifacts --------------------------------------------------------------------------

    def _artifact_rows(self) -> list[dict[str, Any]]:
        return _db.rows(self._ledger, _ARTIFACT_SELECT + " where a.task_id = ? order by a.name",
                        (self._pk,))  # fmt: skip

    def _children(self) -> list["DataArtifact"]:
        return [DataArtifact._make(self, row) for row in self._artifact_rows()
                if not row["name"].startswith("_")]  # fmt: skip

    def __getitem__(self, name: str) -> "DataArtifact":
        """The artifact `name` (private ones such as '_graph_info' too)."""
        return DataArtifact._make(self, _find_artifact(self, name, f"{self.pathspec}/{name}"))

    def __contains__(self, name: object) -> bool:
        return bool(_db.one(
            self._ledger, "select 1 as found from artifact where task_id = ? and name = ?",
            (self._pk, str(name)),
        ))  # fmt: skip

    @property
    def data(self) -> MetaflowData:
        """`task.data.x`: the value of artifact x, loaded on access."""
        return MetaflowData(self._children(), _owner=f"task {self.pathspec}")

    @property
    def artifacts(self) -> Any:
        """`task.artifacts.x`: the DataArtifact x; iterable, like Metaflow's namedtuple."""
        arts = self._children()
        return namedtuple("MetaflowArtifacts", [a.id for a in arts])._make(arts)  # type: ignore[misc]

    # -- state ---------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """succeeded | failed | caught | running | crashed | interrupted. A running task of a
        crashed run reads as crashed."""
        status = self._row["status"]
        if status == "running" and self._run.status == "crashed":
            return "crashed"
        return status

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
        row = _db.one(self._ledger, "select traceback from task where id = ?", (self._pk,))
        return MetaflowExceptionWrapper(
            self._row["exception_type"], self._row["exception"], row["traceback"] if row else None
        )

    @property
    def index(self) -> int | None:
        """Index in the innermost foreach; None outside a foreach."""
        return self._row["foreach_index"]

    @property
    def foreach_stack(self) -> list[ForeachFrame]:
        """One frame per enclosing foreach, outermost first: (step, var, num_splits, index,
        value), where value is the item's repr."""
        return [ForeachFrame(*frame) for frame in json.loads(self._row["foreach_stack"] or "[]")]

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

    # -- logs -----------------------------------------------------------------------------------

    def _log(self, stream: str, column: str) -> Any:
        row = _db.one(self._ledger, f"select {column} as v from log where task_id = ? and stream = ?",
                      (self._pk, stream))  # fmt: skip
        return row["v"] if row else None

    @property
    def stdout(self) -> str:
        return self._log("stdout", "text") or ""

    @property
    def stderr(self) -> str:
        return self._log("stderr", "text") or ""

    @property
    def stdout_size(self) -> int:
        return int(self._log("stdout", "length(cast(text as blob))") or 0)

    @property
    def stderr_size(self) -> int:
        return int(self._log("stderr", "length(cast(text as blob))") or 0)

    # -- lineage -------------------------------------------------------------------------------

    _ATTEMPTS = "select id from task where run_id = ? and step = ? and task_id = ?"

    def _related(self, mine: str, theirs: str) -> list[tuple[str, str]]:
        found = _db.rows(
            self._ledger,
            f"select distinct o.step as step, o.task_id as task_id from task_parent tp"
            f" join task o on o.id = tp.{theirs} where tp.{mine} in ({self._ATTEMPTS})",
            (self._run._pk, self._row["step"], self.id),
        )
        return sorted({(r["step"], r["task_id"]) for r in found},
                      key=lambda st: (st[0], _id_key(st[1])))  # fmt: skip

    def _tasks_at(self, pairs: list[tuple[str, str]]) -> Iterator["Task"]:
        for step, task_id in pairs:
            requested = f"{self._run.pathspec}/{step}/{task_id}"
            yield Task._make(self._run, _find_task(self._run, step, task_id, None, requested))

    @property
    def parent_task_pathspecs(self) -> Iterator[str]:
        for step, task_id in self._related("task_id", "parent_id"):
            yield f"{self._run.pathspec}/{step}/{task_id}"

    @property
    def child_task_pathspecs(self) -> Iterator[str]:
        for step, task_id in self._related("parent_id", "task_id"):
            yield f"{self._run.pathspec}/{step}/{task_id}"

    @property
    def parent_tasks(self) -> Iterator["Task"]:
        """The tasks whose output this task started from (several for a join)."""
        return self._tasks_at(self._related("task_id", "parent_id"))

    @property
    def child_tasks(self) -> Iterator["Task"]:
        """The tasks that started from this task's output."""
        return self._tasks_at(self._related("parent_id", "task_id"))

    # -- metadata --------------------------------------------------------------------------------

    @property
    def metadata_dict(self) -> dict[str, str]:
        """Facts about this task attempt, with Metaflow's key names where it has them."""
        run, row = self._run._row, self._row
        facts: dict[str, Any] = {
            "attempt": row["attempt"],
            "status": self.status,
            "user": run["user"],
            "runtime": self.runtime_name,
            "python_version": run["python_version"],
            "ledgerflow_version": run["ledgerflow_version"],
            "script-name": run["script_name"],
            "host": run["host"],
            "ledger": self._ledger.path,
            "origin-run-id": run["origin_run_id"],
        }
        if row["status"] != "running":
            facts["attempt_ok"] = row["status"] in ("succeeded", "caught")
        if row["origin_pathspec"]:
            facts["origin-task-id"] = row["origin_pathspec"].rsplit("/", 1)[-1]
        stack = self.foreach_stack
        if stack:
            facts["foreach-execution-path"] = ",".join(f"{f.step}:{f.index}" for f in stack)
        return {k: str(v) for k, v in facts.items() if v is not None}

    @property
    def metadata(self) -> list[Metadata]:
        """metadata_dict as Metaflow's list of Metadata(name, value, created_at, type, task)."""
        started = parse_iso(self._row["started_at"])
        ts = int(started.timestamp() * 1000) if started else None
        return [Metadata(k, v, ts, k, self) for k, v in self.metadata_dict.items()]

    def _repr_html_(self) -> str:
        exc = self._row["exception_type"]
        return html_table(str(self), [
            ("status", self.status),
            ("attempt", self._row["attempt"]),
            ("index", self.index),
            ("started_at", parse_iso(self._row["started_at"])),
            ("finished_at", self.finished_at),
            ("artifacts", ", ".join(a.id for a in self)),
            ("exception", f"{exc}: {self._row['exception']}" if exc else None),
        ])  # fmt: skip


class DataArtifact(MetaflowObject):
    """One artifact of a task. `.data` decodes it: a fresh object on every access."""

    _NAME = "artifact"
    _PARTS = 5
    _FORM = "DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')"

    def _lookup(self, ids: list[str], requested: str) -> None:
        run = self._open_run(ids[0], ids[1], requested)
        task = Task._make(run, _find_task(run, ids[2], ids[3], self._attempt, requested),
                          holder=self)  # fmt: skip
        self._set(task, _find_artifact(task, ids[4], requested))

    @classmethod
    def _make(cls, task: Task, row: dict[str, Any]) -> "DataArtifact":
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
        """The value, decoded from the ledger (a new object each time)."""
        return self._ledger.load(self._row["sha"])

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
