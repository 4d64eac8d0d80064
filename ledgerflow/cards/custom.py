"""Custom card types, with Metaflow's `MetaflowCard` interface.

A card type is a class with a `type` name and a `render(task)` method returning HTML:

    from ledgerflow.cards import MetaflowCard, register_card

    class ReportCard(MetaflowCard):
        type = "report"

        def __init__(self, options={}, components=[], graph=None, flow=None, **kwargs):
            self.title = options.get("title", "Report")

        def render(self, task):
            return f"<h1>{self.title}</h1><p>accuracy: {task.data.accuracy}</p>"

    register_card(ReportCard)     # in the flow file, or a module the flow imports

A package can instead declare its card types as entry points of the group
`ledgerflow.cards` (`report = "my_pkg.cards:ReportCard"`); they are looked up the first
time a step asks for a type nobody registered. Metaflow finds card types in
`metaflow_extensions` packages; ledgerflow has no such namespace, so a Metaflow card class
needs one of these two lines (docs/cards-and-ui.md shows both).

A custom card is rendered in the task's process when its step has returned, as the built-in
ones are, with a `CardTask`: the task's pathspec, ids and `data` (its artifacts, read from
the step's own values). Its HTML is stored in the ledger like any card's and shown in a
sandboxed frame (cards/safe_view.py), so a card's script never runs with the viewer's rights.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from typing import Any

from ..exceptions import LedgerflowError

ENTRY_POINT_GROUP = "ledgerflow.cards"
BUILT_IN = ("default", "blank", "error")

_lock = threading.Lock()
_registered: dict[str, type[MetaflowCard]] = {}
_entry_points_read = False


class MetaflowCard:
    """Base class of card types (Metaflow's `metaflow.cards.MetaflowCard`): set `type` and
    implement `render(task) -> str`. `options` are the `@card(options=...)`; with
    `ALLOW_USER_COMPONENTS = True`, `components` are the HTML of what the step appended
    with `current.card.append(...)`."""

    RELOAD_POLICY_NEVER = "never"
    RELOAD_POLICY_ALWAYS = "always"
    RELOAD_POLICY_ONCHANGE = "onchange"
    RELOAD_POLICY_TOKEN = "[METAFLOW_RELOAD_TOKEN]"

    type: str | None = None
    ALLOW_USER_COMPONENTS = False
    RUNTIME_UPDATABLE = False  # cards are rendered once, when the task ends
    RELOAD_POLICY = RELOAD_POLICY_NEVER
    scope = "task"
    runtime_data = None

    def __init__(self, options: dict[str, Any] | None = None, components: list[Any] | None = None,
                 graph: Any = None, flow: Any = None, **kwargs: Any):  # fmt: skip
        pass

    def render(self, task: Any) -> str:
        """The card's HTML for the finished task."""
        raise NotImplementedError(f"card type {self.type!r} does not implement render(task)")

    def render_runtime(self, task: Any, data: Any) -> str:
        raise NotImplementedError()

    def refresh(self, task: Any, data: Any) -> Any:
        raise NotImplementedError()

    def reload_content_token(self, task: Any, data: Any) -> str:
        return "content-token"


def register_card(card_class: type[MetaflowCard]) -> type[MetaflowCard]:
    """Make `@card(type=card_class.type)` render with `card_class`. Returns the class, so it
    can be used as a class decorator. Registering the same class again is harmless."""
    if not isinstance(card_class, type) or not callable(getattr(card_class, "render", None)):
        raise LedgerflowError(
            f"register_card needs a MetaflowCard subclass with a render(task) method, not "
            f"{card_class!r}"
        )
    name = getattr(card_class, "type", None)
    if not isinstance(name, str) or not name:
        raise LedgerflowError(
            f"card class {card_class.__name__} has no type name; set type = 'my_card' in it"
        )
    if name in BUILT_IN:
        raise LedgerflowError(
            f"card type {name!r} is built in; give {card_class.__name__} another type name"
        )
    with _lock:
        known = _registered.get(name)
        if known is not None and _qualname(known) != _qualname(card_class):
            raise LedgerflowError(
                f"card type {name!r} is registered already by {_qualname(known)}; give "
                f"{card_class.__name__} another type name"
            )
        _registered[name] = card_class
    return card_class


def card_class(name: str) -> type[MetaflowCard] | None:
    """The registered class of a card type (entry points are read on the first miss)."""
    global _entry_points_read
    with _lock:
        found = _registered.get(name)
        if found is not None or _entry_points_read:
            return found
        _entry_points_read = True
    for loaded in _from_entry_points():
        try:
            register_card(loaded)
        except LedgerflowError:
            continue  # a broken plugin must not break the others; its type stays unknown
    with _lock:
        return _registered.get(name)


def registered_types() -> list[str]:
    with _lock:
        return sorted(_registered)


def _from_entry_points() -> list[type[MetaflowCard]]:
    from importlib import metadata

    classes = []
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            classes.append(point.load())
        except Exception:  # noqa: BLE001, S112 - an uninstallable plugin is skipped
            continue
    return classes


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def make_card(cls: type[MetaflowCard], options: dict[str, Any], components: list[Any],
              graph: Any, flow: Any) -> MetaflowCard:  # fmt: skip
    """An instance, given the keywords its `__init__` takes (Metaflow also passes fewer to
    older card classes)."""
    offered = {"options": options, "components": components, "graph": graph, "flow": flow}
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return cls(**offered)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(**offered)
    return cls(**{k: v for k, v in offered.items() if k in params})


class _Artifact:
    """`task['name']`: the value (`.data`) and its SHA-256 (`.sha`)."""

    def __init__(self, name: str, data: Any, sha: str | None):
        self.id = name
        self.data = data
        self.sha = sha


class _TaskData:
    """`task.data.name`: an artifact's value."""

    def __init__(self, task: CardTask):
        self._task = task

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._task[name].data

    def __contains__(self, name: str) -> bool:
        return name in self._task

    def __iter__(self) -> Iterator[str]:
        return iter(self._task._shas)


class CardTask:
    """The finished task as a custom card's `render(task)` sees it: `pathspec`, `id`,
    `flow_name`, `run_id`, `step_name`, `finished_at`, `successful`, `data.NAME`,
    `task['NAME'].data`, `'NAME' in task`, iteration over the artifacts."""

    def __init__(self, pathspec: str, flow: Any, shas: dict[str, str | None],
                 finished_at: str | None, successful: bool):  # fmt: skip
        self.pathspec = pathspec
        self.flow_name, self.run_id, self.step_name, self.id = pathspec.split("/")
        self.finished_at = finished_at
        self.created_at = finished_at
        self.successful = successful
        self.finished = True
        self._flow = flow
        self._shas = shas
        self.data = _TaskData(self)

    def __getitem__(self, name: str) -> _Artifact:
        if name not in self._shas or self._flow is None:
            raise KeyError(f"task {self.pathspec} has no artifact {name!r}")
        return _Artifact(name, getattr(self._flow, name), self._shas[name])

    def __contains__(self, name: object) -> bool:
        return name in self._shas

    def __iter__(self) -> Iterator[_Artifact]:
        return (self[name] for name in list(self._shas))

    def __repr__(self) -> str:
        return f"CardTask('{self.pathspec}')"
