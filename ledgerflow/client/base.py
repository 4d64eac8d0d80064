"""What every client object shares: pathspec parsing, identity, namespaces, tags, and the
indexed lookups that find a run, step, task or artifact (with NotFound messages that say
what is there instead)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from .. import ledger_choice, reads
from ..clock import parse_iso
from ..exceptions import MetaflowInvalidPathspec, MetaflowNotFound
from ..internals import INTERNAL_ARTIFACTS
from ..ledger import Ledger
from .context import get_namespace

END_STEP = "end"  # ledgerflow's graph always ends at 'end'


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
        ledger: ledger_choice.LedgerLike | None = None,
        _namespace_check: bool = True,
        _current_namespace: str | None = None,
    ):
        self._attempt = _check_attempt(self._NAME, attempt)
        ids = self._split(pathspec)
        self._ledger = ledger_choice.resolve_ledger(ledger)
        self._current_namespace = _current_namespace or get_namespace()
        self._namespace_check = bool(_namespace_check) and self._current_namespace is not None
        self._pathspec: str | None = None
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

    # -- identity --------------------------------------------------------------------------

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
            return f"{type(self).__name__}('{self.pathspec}', attempt={self._attempt:d})"
        return f"{type(self).__name__}('{self.pathspec}')"

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
        ledger = ledger_choice.open_ledger_file(path, readonly)
        MetaflowObject.__init__(
            self, pathspec, attempt, ledger=ledger, _namespace_check=check, _current_namespace=ns
        )

    # -- tags and namespace ----------------------------------------------------------------

    @property
    def _run_for_tags(self) -> Any:  # the Run holding this object, if any
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
        ns = get_namespace()
        return ns is None or ns in self.tags

    # -- children --------------------------------------------------------------------------

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

    def _repr_html_(self) -> str:
        """What a notebook shows (client/notebook.py): a Flow's newest runs, a Run's DAG with
        per-step counts and durations, a Step's tasks, a Task's attempts and artifacts, an
        artifact's preview or structure. Nothing is unpickled."""
        from .notebook import artifact_html, flow_html, run_html, step_html, task_html

        shows: dict[str, Callable[[Any], str]] = {
            "flow": flow_html, "step": step_html, "artifact": artifact_html, "run": run_html,
            "task": task_html,
        }  # fmt: skip
        show = shows.get(self._NAME)
        if show is None:
            from .extras import html_table

            return html_table(str(self), [("pathspec", self.pathspec)])
        return show(self)

    # -- times -----------------------------------------------------------------------------

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


# -- lookups shared by direct construction and parent[id] ----------------------------------
# (`run` is a Run and `task` a Task of objects.py, which builds on this module.)


def _find_run(ledger: Ledger, flow: str, run_id: str, requested: str) -> dict[str, Any]:
    row = reads.find_run(ledger, flow, run_id)
    if row is not None:
        return row
    flow_row = reads.flow(ledger, flow)
    if flow_row is None:
        raise _not_found(requested, ledger, _no_flow_detail(ledger, flow))
    runs = ", ".join(r["run_id"] for r in reads.flow_runs(ledger, flow_row, limit=3))
    detail = f"flow {flow} has no run '{run_id}'" + (
        f" (latest runs: {runs})" if runs else " (it has no runs)"
    )
    raise _not_found(requested, ledger, detail)


def _no_flow_detail(ledger: Ledger, flow: str) -> str:
    names = reads.flow_names(ledger, limit=11)
    return f"there is no flow named '{flow}' (flows there: {_listing(names)})"


def _find_step_row(run: Any, step: str, requested: str) -> dict[str, Any]:
    row = reads.step_row(run._ledger, run._pk, step)
    if row is None:
        raise _not_found(
            requested,
            run._ledger,
            f"run {run.pathspec} has no step '{step}' (its steps: {_listing(run._step_names())})",
        )
    return row


def _find_task(
    run: Any, step: str, task_id: str, attempt: int | None, requested: str
) -> dict[str, Any]:
    ledger = run._ledger
    row = reads.find_task(ledger, run._pk, step, task_id, attempt)
    if row is not None:
        return row
    attempts = reads.task_attempts(ledger, run._pk, step, task_id)
    if attempts:
        listed = _listing(str(a["attempt"]) for a in attempts)
        detail = (
            f"task {run.pathspec}/{step}/{task_id} has no attempt {attempt} (attempts: {listed})"
        )
    elif step in run:
        ids = reads.task_ids(ledger, run._pk, step)
        detail = f"step {run.pathspec}/{step} has no task '{task_id}' (its tasks: {_listing(ids)})"
    else:
        detail = (
            f"run {run.pathspec} has no step '{step}' (its steps: {_listing(run._step_names())})"
        )
    raise _not_found(requested, ledger, detail)


def _find_artifact(task: Any, name: str, requested: str) -> dict[str, Any]:
    if name in INTERNAL_ARTIFACTS:
        return _internal_row(task, name)
    row = reads.find_artifact(task._ledger, task._pk, name)
    if row is not None:
        return row
    names = [a.id for a in task._children()]
    detail = f"task {task.pathspec} has no artifact '{name}' (its artifacts: {_listing(names, 20)})"
    raise _not_found(requested, task._ledger, detail)


def _internal_row(task: Any, name: str) -> dict[str, Any]:
    """An artifact row for an internal artifact built from the task's columns
    (see ledgerflow/internals.py); `computed` holds a function giving its value."""
    from .. import codec
    from ..internals import internal_value

    def graph_info() -> Any:
        from ..identify import stored_json

        info = reads.run_graph_info(task._ledger, task._run._pk)
        return stored_json(info, f"{task._run.pathspec}'s graph_info") if info else None

    def compute() -> Any:
        return internal_value(name, task._row, graph_info)

    value = compute()
    blob = codec.encode_blob(value)
    return {"name": name, "sha": blob.sha, "encoding": blob.encoding,
            "type": codec.type_name(value), "size": blob.raw_size, "inherited": 0,
            "computed": compute}  # fmt: skip
