"""Cards, as in Metaflow: `@card` on a step, `current.card.append(...)` in it, and
`get_cards(task)` afterwards. Cards are rendered to self-contained HTML when the task ends
and stored in the ledger with the task.

    from ledgerflow.cards import Markdown, Table, Image, get_cards

Custom card types: subclass `MetaflowCard` and `register_card` it (see custom.py).

Names load on first use, so a flow that never draws a card pays nothing for them. Reading
cards back (`get_cards`, `Card`, `CardContainer`) is the Client API's part: client/cards.py.
A task renders its cards through taskcards.py.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Markdown": "components", "Table": "components", "Image": "components",
    "Artifact": "components", "VegaChart": "components", "ProgressBar": "components",
    "Error": "components", "MetaflowCardComponent": "components",
    "UserComponent": "components", "get_cards": "..client.cards", "Card": "..client.cards",
    "CardContainer": "..client.cards", "CardNotPresentException": "exception",
    "MetaflowCard": "custom", "register_card": "custom",
}  # fmt: skip

__all__ = ["Artifact", "Card", "CardContainer", "CardNotPresentException", "Error", "Image",
           "Markdown", "MetaflowCard", "MetaflowCardComponent", "ProgressBar", "Table",
           "UserComponent", "VegaChart", "get_cards", "register_card"]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledgerflow.cards' has no attribute '{name}'")
    import importlib

    value = getattr(
        importlib.import_module(module if "." in module else f".{module}", __name__), name
    )
    globals()[name] = value
    return value
