"""`metaflow.plugins.cards.card_modules` import paths."""
