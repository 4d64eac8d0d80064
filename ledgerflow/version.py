"""ledgerflow's version: recorded with every run (system tags, the run row) and shown by
`--version`. Its own module so that any module can read it without importing the package
face, which sits above them all (`ledgerflow/__init__.py` re-exports it)."""

__version__ = "0.1.0"
