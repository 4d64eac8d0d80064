"""The small value types the Client API hands out, and tag validation (Metaflow's rules)."""

from __future__ import annotations

import html
from collections import namedtuple
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..exceptions import MetaflowTaggingError

if TYPE_CHECKING:
    from .tasks import DataArtifact

# One fact about a task, as Metaflow's Task.metadata lists them.
Metadata = namedtuple("Metadata", ["name", "value", "created_at", "type", "task"])

# Metaflow's limits (metaflow/tagging_util.py).
MAX_TAG_SIZE = 500
MAX_USER_TAG_SET_SIZE = 50


def is_stringish(x: Any) -> bool:
    return isinstance(x, (str, bytes))


def validate_tag(tag: Any) -> str:
    """The tag as str, or MetaflowTaggingError: a non-empty UTF-8 string of at most 500
    characters."""
    if isinstance(tag, bytes):
        try:
            tag = tag.decode("utf-8")
        except UnicodeError:
            raise MetaflowTaggingError("Tags must be UTF-8 decodable") from None
    elif isinstance(tag, str):
        try:
            tag.encode("utf-8")
        except UnicodeError:
            raise MetaflowTaggingError(f"Tags must be UTF-8 encodable: {tag!r}") from None
    else:
        raise MetaflowTaggingError(f"Tags must be strings, got {type(tag).__name__}: {tag!r}")
    if not tag:
        raise MetaflowTaggingError("Tags must not be empty strings")
    if len(tag) > MAX_TAG_SIZE:
        raise MetaflowTaggingError(
            f"Tag is too long ({len(tag)} > {MAX_TAG_SIZE} characters): {tag[:40]!r}..."
        )
    return tag


def tag_list(tags: Any, what: str) -> list[str]:
    """Validated tags from an iterable (not a lone string)."""
    if is_stringish(tags):
        raise MetaflowTaggingError(f"{what} may not be a string; pass a list of tags")
    try:
        items = list(tags)
    except TypeError:
        raise MetaflowTaggingError(f"{what} must be an iterable of tags") from None
    return [validate_tag(t) for t in items]


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
