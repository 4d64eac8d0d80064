"""Whose pickles may be loaded. Unpickling runs code, so a pickled artifact written on
another machine (a ledger received by mail, runs imported from a colleague) loads only
after an explicit opt-in:

- `ledgerflow.trust()` (everything, this process) or `ledgerflow.trust(ledger_path)`,
- the environment variable `LEDGERFLOW_TRUST=1`,
- `--trust` on the commands that load values.

JSON-encoded values (numbers, strings, lists and dicts of them) need no trust.
Each machine gets a random id in `~/.ledgerflow/machine-id`; runs record the id of the
machine that ran them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .exceptions import UntrustedLedgerError

ENV_TRUST = "LEDGERFLOW_TRUST"
ENV_MACHINE_ID = "LEDGERFLOW_MACHINE_ID"  # for tests that play another machine
_lock = threading.Lock()
_machine_id: str | None = None
_trust_all = False
_trusted_ledgers: set[str] = set()


def machine_id() -> str:
    """This machine's ledgerflow id (created on first use)."""
    global _machine_id
    override = os.environ.get(ENV_MACHINE_ID)
    if override:
        return override
    with _lock:
        if _machine_id is None:
            _machine_id = _load_or_create()
        return _machine_id


def _load_or_create() -> str:
    home = Path(os.environ.get("LEDGERFLOW_HOME") or Path.home() / ".ledgerflow")
    path = home / "machine-id"
    try:
        text = path.read_text().strip()
        if text:
            return text
    except OSError:
        pass
    new = os.urandom(16).hex()
    try:
        home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(new)
        os.replace(tmp, path)
        return path.read_text().strip() or new
    except OSError:
        return new  # a read-only home: an id for this process only


def trust(ledger: str | os.PathLike[str] | None = None) -> None:
    """Allow unpickling artifacts written elsewhere: from one ledger file, or (no argument)
    from every ledger, for the rest of this process."""
    global _trust_all
    if ledger is None:
        _trust_all = True
    else:
        _trusted_ledgers.add(str(Path(ledger).absolute()))


def require_trust(run_machine_id: str | None, ledger_path: str | os.PathLike[str],
                  what: str) -> None:
    """Raise UntrustedLedgerError unless `what` (a pickled value) may be loaded."""
    if run_machine_id and run_machine_id == machine_id():
        return
    if _trust_all or os.environ.get(ENV_TRUST, "").lower() in ("1", "true", "yes"):
        return
    if str(Path(ledger_path).absolute()) in _trusted_ledgers:
        return
    raise UntrustedLedgerError(
        f"{what} is a pickle written on another machine, and loading a pickle runs code; if "
        f"you trust where {Path(ledger_path).name} came from, call ledgerflow.trust(), set "
        f"{ENV_TRUST}=1, or pass --trust"
    )
