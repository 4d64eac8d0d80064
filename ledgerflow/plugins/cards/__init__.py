"""`metaflow.plugins.cards` import paths: see ledgerflow/cards for the implementation."""
