"""The small value types the Client API hands out."""

from __future__ import annotations

import html
from collections import namedtuple
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tasks import DataArtifact

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

    def __init__(self, artifacts: Iterable[DataArtifact], _owner: str = ""):
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
        return "<MetaflowData: %s>" % ", ".join(self._artifacts)

    __repr__ = __str__


def html_table(title: str, rows: list[tuple[str, Any]]) -> str:
    """A small two-column HTML table for notebooks."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape('' if v is None else str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table><caption>{html.escape(title)}</caption>{body}</table>"
