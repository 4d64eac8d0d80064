"""`current.card`: the components a step appends, as Metaflow's `CardComponentCollector`.

The collector is made on first use of `current.card` in a task and read once the step has
returned. Which `@card` a call goes to is settled then, with Metaflow's rules:
`current.card.append` goes to the one editable card (type `default` or `blank`), else to
the one without an `id`, else to the one with `customize=True`; `current.card[ID]` goes to
`@card(id=ID)`. A call no card can take is dropped with a warning on the task's stderr,
never an error (a card never fails a task).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

DEFAULT = object()  # the key of the components sent to the default editable card

_lock = threading.Lock()
_by_task: dict[str, CardComponentCollector] = {}


class CardComponentManager:
    """The components of one card: `append`, `extend`, `clear`, `refresh`, `components`."""

    def __init__(self, components: Iterable[Any] | None = None):
        self._components: list[Any] = list(components or [])
        self._by_id: dict[str, Any] = {}

    def append(self, component: Any, id: str | None = None) -> None:
        self._components.append(component)
        if id is not None:
            self._by_id[id] = component

    def extend(self, components: Iterable[Any]) -> None:
        self._components.extend(components)

    def clear(self) -> None:
        self._components.clear()
        self._by_id.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Accepted: the card is rendered once, when the task ends, with the final state."""

    @property
    def components(self) -> list[Any]:
        return self._components

    def __getitem__(self, key: str) -> Any:
        return self._by_id[key]

    def __setitem__(self, key: str, component: Any) -> None:
        if key in self._by_id:
            old = self._by_id[key]
            self._components = [component if c is old else c for c in self._components]
        else:
            self._components.append(component)
        self._by_id[key] = component

    def __contains__(self, key: str) -> bool:
        return key in self._by_id

    def __iter__(self) -> Iterator[Any]:
        return iter(self._components)

    def __len__(self) -> int:
        return len(self._components)


class CardComponentCollector:
    """What `current.card` is inside a running task."""

    def __init__(self) -> None:
        self._managers: dict[Any, CardComponentManager] = {DEFAULT: CardComponentManager()}
        self._types: dict[str, list[CardComponentManager]] = {}

    # -- the default editable card
    def append(self, component: Any, id: str | None = None) -> None:
        self._managers[DEFAULT].append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        self._managers[DEFAULT].extend(components)

    def clear(self) -> None:
        self._managers[DEFAULT].clear()

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Accepted: cards are rendered once, when the task ends."""

    @property
    def components(self) -> CardComponentManager:
        return self._managers[DEFAULT]

    # -- cards chosen by id or type
    def __getitem__(self, key: str) -> CardComponentManager:
        return self._managers.setdefault(str(key), CardComponentManager())

    def __setitem__(self, key: str, value: list[Any]) -> None:
        if not isinstance(value, list):
            _warn(f"current.card[{key!r}] = ... needs a list of components; ignored")
            return
        self._managers[str(key)] = CardComponentManager(value)

    def get(self, type: str | None = None) -> list[CardComponentManager]:
        """The component lists of the cards of a type (one per @card of that type)."""
        return self._types.setdefault(str(type), [CardComponentManager()])

    def _for_card(self, card: dict[str, Any], default_uuid: int | None, index: int,
                  first_of_type: bool, shared_id: bool = False) -> list[Any]:  # fmt: skip
        """The components a given @card receives (its attributes in `card`). An id two
        @card share reaches neither (Metaflow: `current.card[ID]` then does not work)."""
        out: list[Any] = []
        if default_uuid == index:
            out += self._managers[DEFAULT].components
        if card.get("id") is not None and card["id"] in self._managers and not shared_id:
            out += self._managers[card["id"]].components
        if first_of_type:
            for manager in self._types.get(str(card.get("type")), []):
                out += manager.components
        return out

    def _unclaimed_ids(self, ids: set[str]) -> list[str]:
        return [k for k, m in self._managers.items()
                if k is not DEFAULT and k not in ids and len(m)]  # fmt: skip

    @property
    def _has_default_components(self) -> bool:
        return len(self._managers[DEFAULT]) > 0


def _warn(text: str) -> None:
    sys.stderr.write(f"[@card WARNING] {text}\n")


def collector_for(pathspec: str) -> CardComponentCollector:
    """The collector of the running task (made on first use)."""
    with _lock:
        collector = _by_task.get(pathspec)
        if collector is None:
            collector = _by_task[pathspec] = CardComponentCollector()
        return collector


def take_collector(pathspec: str) -> CardComponentCollector | None:
    """The task's collector, removed from the registry (the task has ended)."""
    with _lock:
        return _by_task.pop(pathspec, None)


EDITABLE_TYPES = ("default", "blank")


def is_editable(card_type: Any) -> bool:
    """Whether a card of this type takes `current.card.append` components: the built-in
    default and blank, and custom types declaring ALLOW_USER_COMPONENTS (Metaflow's rule)."""
    if card_type in EDITABLE_TYPES:
        return True
    if not isinstance(card_type, str) or card_type in ("error",):
        return False
    from .custom import card_class

    cls = card_class(card_type)
    return bool(cls is not None and getattr(cls, "ALLOW_USER_COMPONENTS", False))


def default_editable(cards: list[dict[str, Any]]) -> int | None:
    """The index of the card `current.card.append` goes to (Metaflow's rules), or None."""
    editable = [i for i, c in enumerate(cards) if is_editable(c.get("type"))]
    if len(editable) == 1:
        return editable[0]
    customized = [i for i in editable if cards[i].get("customize")]
    if len(customized) == 1:
        return customized[0]
    without_id = [i for i in editable if cards[i].get("id") is None]
    if len(without_id) == 1:
        return without_id[0]
    return None
