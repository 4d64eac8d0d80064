"""Which ledger a library call reads: the one rule the Client API, `sql()`, `search()` and
the command lines follow (`ledger_path`), and the process-wide choice Metaflow's names make
(`metadata`, `get_metadata`, `default_metadata`, plus our `use_ledger`).

The rule: the `ledger=` given (a path, 'ledger@PATH', a folder holding ledgerflow.db, or a
`Ledger`), else the one chosen with `use_ledger()` / `metadata()`, else, inside a step, the
run's own ledger (`current`), else the default location (location.resolve_ledger_path:
$LEDGERFLOW_DB, then the nearest ledgerflow.db; the command lines put --db there). It is
resolved at each call, so environment changes made after import still count.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from .current import current
from .exceptions import LedgerflowError
from .ledger import Ledger
from .location import DEFAULT_NAME, existing_ledger, resolve_ledger_path

LedgerLike = Union[str, "os.PathLike[str]", Ledger]

# None: the default location ($LEDGERFLOW_DB, else the nearest ledgerflow.db).
_ledger: Ledger | Path | None = None
_readonly: bool | None = None


def _as_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser().absolute()
    # Like Metaflow's local@DIR: a folder means the ledger file inside it.
    return p / DEFAULT_NAME if p.is_dir() else p


def _parse_spec(spec: LedgerLike) -> Ledger | Path:
    if isinstance(spec, Ledger):
        return spec
    text = os.fspath(spec)
    kind, sep, info = text.partition("@")
    if sep and kind in ("ledger", "local"):
        text = info
    elif sep and kind in ("service", "spin") or text.startswith(("http://", "https://")):
        raise LedgerflowError(
            f"ledgerflow reads ledger files only, not {text!r}; pass a path such as "
            "'ledger@/path/to/ledgerflow.db'"
        )
    if not text:
        raise LedgerflowError("metadata() needs a ledger path, e.g. 'ledger@./ledgerflow.db'")
    return _as_path(text)


def use_ledger(path: LedgerLike | None = None, readonly: bool | None = None) -> str:
    """Read from this ledger (a path, a folder holding ledgerflow.db, or a `Ledger`) from now
    on, in this process. None goes back to the default location. `readonly=True` opens the
    file read-only even where it could be written. Returns get_metadata()."""
    global _ledger, _readonly
    _ledger = None if path is None else _parse_spec(path)
    _readonly = readonly
    return get_metadata()


def metadata(ms: LedgerLike) -> str:
    """Metaflow's name for use_ledger(): accepts a path, 'ledger@PATH' or 'local@PATH'.
    Returns the new get_metadata() value."""
    return use_ledger(ms)


def default_metadata() -> str:
    """Go back to the default ledger location; returns get_metadata()."""
    return use_ledger(None)


def ledger_path(ledger: LedgerLike | None = None) -> Path:
    """The ledger file a library call reads, by the rule in this module's docstring."""
    if ledger is None:
        return _current_path()
    chosen = _parse_spec(ledger)
    return chosen if isinstance(chosen, Path) else chosen.path


def _current_path() -> Path:
    if isinstance(_ledger, Ledger):
        return _ledger.path
    if isinstance(_ledger, Path):
        return _ledger
    running = current._ledger_path()  # inside a step: the run's own ledger
    if running:
        return Path(running)
    return resolve_ledger_path(None)


def get_metadata() -> str:
    """'ledger@/absolute/path/to/ledgerflow.db': the ledger objects are read from."""
    return f"ledger@{_current_path()}"


def resolve_ledger(ledger: LedgerLike | None = None) -> Ledger:
    """The open Ledger for an explicit choice, else the process-wide one. Never creates a
    ledger file."""
    readonly = _readonly
    if ledger is not None:
        chosen: Ledger | Path = _parse_spec(ledger)
        readonly = None
    else:
        chosen = _ledger if isinstance(_ledger, Ledger) else _current_path()
    if isinstance(chosen, Ledger):
        return chosen
    return open_ledger_file(chosen, readonly)


def open_ledger_file(path: str | os.PathLike[str], readonly: bool | None = None) -> Ledger:
    """The process-wide Ledger for an existing file (LedgerNotFoundError if there is none)."""
    path = existing_ledger(path, "run a flow there first, or choose an existing ledger with "
                           "use_ledger(PATH), metadata('ledger@PATH'), ledger=PATH or "
                           "$LEDGERFLOW_DB")  # fmt: skip
    return Ledger.open(path, readonly=readonly, reader=True)  # reading never writes
