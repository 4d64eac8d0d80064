"""`from ledgerflow.plugins.cards.card_modules.card import MetaflowCard`, Metaflow's path
for the card base classes (metaflow.plugins.cards.card_modules.card)."""

from ....cards.components import MetaflowCardComponent
from ....cards.custom import MetaflowCard

__all__ = ["MetaflowCard", "MetaflowCardComponent"]
