"""Where a run was made: each machine gets a random id in `~/.ledgerflow/machine-id`, and
runs record the id of the machine that ran them (shown, queryable). It is *not* a secret and
grants nothing: `export` copies it. Whose pickles may load is decided in trust_store.py.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

ENV_MACHINE_ID = "LEDGERFLOW_MACHINE_ID"  # for tests that play another machine
_lock = threading.Lock()
_machine_id: str | None = None


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
