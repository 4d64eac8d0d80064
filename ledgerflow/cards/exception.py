"""Card errors, with Metaflow's names (`metaflow.plugins.cards.exception`).

    CardNotPresentException (a MetaflowNotFound)   the task has no card (of that type/id)

Defined here rather than in `exceptions.py` because only card code raises it; it sits in
that module's tree under `MetaflowNotFound`, so `except MetaflowNotFound` catches it too.
Also importable as `ledgerflow.plugins.cards.exception`, the path Metaflow users import
it from.
"""

from __future__ import annotations

from ..exceptions import MetaflowNotFound


class CardNotPresentException(MetaflowNotFound):
    """No card is stored for the task (or none of the asked type, id or hash)."""

    def __init__(self, pathspec: str, card_type: str | None = None,
                 card_hash: str | None = None, card_id: str | None = None):  # fmt: skip
        # Metaflow's wording, word for word, so code matching on it keeps working.
        message = f"Card not found for pathspec {pathspec}"
        if card_id is not None:
            message = f"Card with id '{card_id}' not found for pathspec {pathspec}"
        if card_type is not None:
            message = f"Card with type '{card_type}' not found for pathspec {pathspec}"
        if card_hash is not None:
            message = (f"Card with hash '{card_hash}' not found for pathspec {pathspec}. When "
                       "using `--hash` always ensure you have full hash or first five "
                       "characters of the hash.")  # fmt: skip
        super().__init__(message)
        self.pathspec = pathspec
