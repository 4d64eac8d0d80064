"""Metaflow's `metaflow.plugins` import paths, for code that imports from them
(`from metaflow.plugins.cards.exception import CardNotPresentException`): only the modules
ported code reaches for are here, each re-exporting ledgerflow's own names."""
