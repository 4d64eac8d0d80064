"""`from ledgerflow.plugins.cards.exception import CardNotPresentException`, the path
Metaflow users import it from (metaflow.plugins.cards.exception)."""

from ...cards.exception import CardNotPresentException

__all__ = ["CardNotPresentException"]
