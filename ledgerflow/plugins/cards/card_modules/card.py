"""`from ledgerflow.plugins.cards.card_modules.card import MetaflowCard`, Metaflow's path
for the card base classes (metaflow.plugins.cards.card_modules.card)."""

from ....cards.custom import MetaflowCard
from ....cards.components import MetaflowCardComponent

__all__ = ["MetaflowCard", "MetaflowCardComponent"]
