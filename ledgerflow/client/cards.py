"""`get_cards(task)`: a task's cards, as Metaflow's `metaflow.cards.get_cards` (exported by
`ledgerflow.cards`). The Client API's side of cards: it reads them through a `Task`; the
card types and renderers are in cards/."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

from ..cards.storage import read_card_html
from ..reads import card_rows
from .objects import Task


class Card:
    """One card of a task: `get()` is its HTML, `view()` opens it in a browser."""

    def __init__(self, ledger: Any, row: dict[str, Any], pathspec: str,
                 from_resumed: bool = False, origin_pathspec: str | None = None):  # fmt: skip
        self._ledger, self._row = ledger, row
        self._html: str | None = None
        self.type: str = row["type"]
        self.hash: str | None = row["sha"]
        self.error: str | None = row["error"]  # why rendering failed, else None
        self.pathspec = pathspec
        self.from_resumed = from_resumed
        self.origin_pathspec = origin_pathspec

    @property
    def id(self) -> str | None:
        """The card's id, from `@card(id=...)`."""
        return self._row["card_id"]

    @property
    def path(self) -> str:
        """Where the card is: the task's pathspec, the card's type and position."""
        return f"{self.pathspec}/card/{self._row['seq']}"

    def get(self) -> str:
        """The card's HTML (a failed card without saved HTML gives a page showing its error)."""
        if self._html is None:
            if self.hash is None:
                from ..cards.render import error_card

                self._html = error_card(self.pathspec, self.type, self.error or "no HTML stored")
            else:
                self._html = read_card_html(self._ledger, self.hash)
        return self._html

    def view(self) -> str:
        """Open the card in the web browser; returns the temporary file's path. The card is
        shown in a sandboxed frame of a page whose policy forbids script (safe_view.py): a
        card from a received ledger cannot run anything."""
        import webbrowser

        from ..cards.safe_view import view_page

        fd, path = tempfile.mkstemp(suffix=".html", prefix="ledgerflow-card-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(view_page(self.get(), f"{self.type} card of {self.pathspec}"))
        webbrowser.open("file://" + os.path.abspath(path))
        return path

    def _repr_html_(self) -> str:
        from ..cards.safe_view import sandboxed_frame

        # A frame keeps the card's styles out of the notebook; its sandbox keeps its script
        # (if any) from running at all.
        return sandboxed_frame(self.get(), title=f"{self.type} card of {self.pathspec}")

    def __str__(self) -> str:
        return f"<Card at '{self.path}'>"

    __repr__ = __str__


class CardContainer:
    """The cards of a task: a sequence of `Card`."""

    def __init__(self, cards: list[Card]):
        self._cards = cards

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards)

    def __getitem__(self, index: int) -> Card:
        return self._cards[index]

    def _repr_html_(self) -> str:
        import html

        return "".join(f"<h3>{html.escape(c.type)} {html.escape(c.id or '')}</h3>"
                       f"{c._repr_html_()}" for c in self._cards)  # fmt: skip


def get_cards(task: Any, id: str | None = None, type: str | None = None,
              follow_resumed: bool = True) -> CardContainer:  # fmt: skip
    """The cards of a task (a `Task` or its pathspec), optionally only those with an id or a
    type. A task cloned by `resume` shows its origin's cards when it has none itself. A
    task without any card raises `CardNotPresentException` ("Card not found for pathspec
    ..."), as in Metaflow; filters that match none of a task's cards give an empty
    container."""
    if isinstance(task, str):
        task = Task(task)
    if not isinstance(task, Task):
        raise TypeError(f"get_cards needs a Task or a task pathspec, not {type_name(task)}")
    ledger = task._ledger
    rows = card_rows(ledger, [task._pk])
    pathspec, origin = task.pathspec, None
    if not rows and follow_resumed and task.origin_pathspec:
        origin_task = Task(task.origin_pathspec, ledger=ledger.path)
        rows = card_rows(ledger, [origin_task._pk])
        origin = task.origin_pathspec
    if not rows:
        from ..cards.exception import CardNotPresentException

        raise CardNotPresentException(task.pathspec, card_type=type)
    cards = [
        Card(ledger, r, pathspec, from_resumed=origin is not None, origin_pathspec=origin)
        for r in rows
        if (id is None or r["card_id"] == id) and (type is None or r["type"] == type)
    ]
    return CardContainer(cards)


def type_name(value: Any) -> str:
    return value.__class__.__name__
