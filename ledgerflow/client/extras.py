"""The small value types the Client API hands out."""

from __future__ import annotations

import html
from collections import namedtuple
from collections.abc import Iterable
from typing import Any

# One fact about a task, as Metaflow's Task.metadata lists them.
Metadata = namedtuple("Metadata", ["name", "value", "created_at", "type", "task"])


class MetaflowCode:
    """The flow file a run executed, as the ledger stored it.

    Unlike Metaflow's code package this is the one script only: `flowspec` (its source
    text), `script_name` and `info`; there is no tarball of other files.
    """

    def __init__(self, flow_name: str, script_name: str | None, source: str):
        self._flow_name = flow_name
        self._script_name = script_name or ""
        self._flowspec = source

    @property
    def flowspec(self) -> str:
        """Source code of the Python file containing the FlowSpec."""
        return self._flowspec

    @property
    def script_name(self) -> str:
        """File name of the script that ran, e.g. 'myflow.py'."""
        return self._script_name

    @property
    def info(self) -> dict[str, str]:
        return {"script": self._script_name, "flow_name": self._flow_name}

    def __str__(self) -> str:
        return f"<MetaflowCode: {self._script_name}>"

    __repr__ = __str__


class MetaflowData:
    """`task.data`: artifact values by attribute (`task.data.x`), loaded on access, a fresh
    object each time. `'x' in task.data` tests presence without loading."""

    def __init__(self, artifacts: Iterable[Any], _owner: str = ""):
        self._artifacts = {a.id: a for a in artifacts}
        self._owner = _owner

    def __getattr__(self, name: str) -> Any:
        artifacts = self.__dict__.get("_artifacts", {})
        if name not in artifacts:
            known = ", ".join(sorted(artifacts)) or "none"
            raise AttributeError(
                f"{self.__dict__.get('_owner') or 'this task'} has no artifact '{name}' "
                f"(its artifacts: {known})"
            )
        return artifacts[name].data

    def __contains__(self, name: object) -> bool:
        return name in self._artifacts

    def __dir__(self) -> list[str]:
        return list(self._artifacts) + list(object.__dir__(self))

    def __str__(self) -> str:
        return f"<MetaflowData: {', '.join(self._artifacts)}>"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        """The artifacts' names, types, sizes and stored previews (nothing is loaded)."""
        arts = self.__dict__.get("_artifacts", {})
        return html_rows(f"data of {self._owner or 'task'}", ["name", "type", "size", "preview"],
                         [[a.id, a.type, a.size, stored_preview(a)]
                          for a in arts.values()])  # fmt: skip


def html_table(title: str, rows: list[tuple[str, Any]]) -> str:
    """A small two-column HTML table for notebooks."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape('' if v is None else str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table><caption>{html.escape(title)}</caption>{body}</table>"


def html_rows(title: str, header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table with a header row, cells escaped (previews come from stored text,
    never from unpickling)."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{_cell(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><caption>{html.escape(title)}</caption><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    return html.escape("" if value is None else str(value))


class TaskExtras:
    """Metaflow's Task members that have no ledgerflow counterpart of their own."""

    def loglines(self, stream: str, as_unicode: bool = True,
                 meta_dict: Any = None) -> Iterable[tuple[Any, Any]]:  # fmt: skip
        """(timestamp, line) for each line of 'stdout' or 'stderr', as Metaflow's
        `Task.loglines`. ledgerflow stores a task's log as text, not per-line times: every
        line carries the task's start time (naive UTC, as Metaflow's timestamps)."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        text: str = getattr(self, stream)  # (each line ends with "\n": Task.stdout)
        started = self._started_utc()
        # Lines end at "\n" only, as Metaflow's: a progress bar's "\r" stays in its line.
        for line in text.split("\n")[:-1]:
            yield started, (line if as_unicode else line.encode("utf-8"))

    def _started_utc(self) -> Any:
        from datetime import UTC, datetime

        raw = self._row["started_at"]  # type: ignore[attr-defined]
        if not raw:
            return None
        moment = datetime.fromisoformat(raw)
        return moment.astimezone(UTC).replace(tzinfo=None)

    @property
    def environment_info(self) -> dict[str, Any] | None:
        """None, as Metaflow for local runs (no code package, no conda environment)."""
        return None


class StepExtras:
    """Metaflow's Step members that have no ledgerflow counterpart of their own."""

    @property
    def environment_info(self) -> dict[str, Any] | None:
        """None, as Metaflow for local runs (see Task.environment_info)."""
        return None


def stored_preview(artifact: Any) -> str:
    """The artifact's preview as stored with its blob (text; never unpickles). Internal
    artifacts built from a task's columns are small JSON values: their repr."""
    from .. import reads
    from ..preview import preview

    computed = artifact._row.get("computed")
    if computed is not None:
        return preview(computed())
    return reads.blob_preview(artifact._ledger, artifact.sha) or ""
