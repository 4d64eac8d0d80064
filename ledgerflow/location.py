"""Where the ledger lives: --db PATH > $LEDGERFLOW_DB > nearest ledgerflow.db upwards > ./ledgerflow.db."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_NAME = "ledgerflow.db"
ENV_VAR = "LEDGERFLOW_DB"


def resolve_ledger_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ledger file to use, following the documented precedence. Does not create it."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().absolute()
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        candidate = folder / DEFAULT_NAME
        if candidate.is_file():
            return candidate
    return cwd / DEFAULT_NAME


def existing_ledger(path: str | os.PathLike[str], fix: str) -> Path:
    """`path`, made absolute, if a ledger file is there; else LedgerNotFoundError saying
    'no ledger at PATH; FIX'. The one "the ledger must exist" check: reading never creates."""
    found = Path(path).expanduser().absolute()
    if not found.is_file():
        from .exceptions import LedgerNotFoundError

        raise LedgerNotFoundError(f"no ledger at {found}; {fix}")
    return found
