"""Whose pickles may be loaded. Unpickling runs code, so a pickled value loads only when the
run that holds it is trusted; JSON values (numbers, strings, lists and dicts of them) load
from anywhere without it.

Trust rests on a per-user trust store kept *outside* every ledger —
`$LEDGERFLOW_TRUST_STORE`, else `trust.json` in `$LEDGERFLOW_HOME` (default
`~/.ledgerflow`) — never on anything inside the file, since whoever sent a file wrote all of
it (`machine_id`, ledger ids, hosts: all copyable, none grants anything).

A run's pickles load when one of these holds:

1. the user trusts everything: `ledgerflow.trust()` (this process) or `LEDGERFLOW_TRUST=1`;
2. the user trusts this ledger file: `ledgerflow.trust(path)` or `--trust` (this process),
   or `ledgerflow.trust(path, remember=True)` / `ledgerflow trust PATH` (kept in the store);
3. the ledger is one of the user's own — the store records each ledger created here, by its
   id *and* its real path, when it is created — and the run was not brought in by
   `import`/`export` from a ledger that was not trusted (the copy itself lists every run it
   writes in the target's `imported_run` table, with whether it was trusted where it came
   from; nothing in the source file decides that).

A received file sits at another path, so it is never "own", whatever ids it carries.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import UntrustedLedgerError

if TYPE_CHECKING:
    from .ledger import Ledger

ENV_TRUST = "LEDGERFLOW_TRUST"
ENV_STORE = "LEDGERFLOW_TRUST_STORE"
MAX_ENTRIES = 10_000  # the oldest records go first past this many of a kind

_lock = threading.Lock()
_trust_all = False
_trusted_paths: set[str] = set()
_cache: tuple[Any, dict[str, Any]] | None = None  # (file stat, contents)


def store_path() -> Path:
    """Where this user's trust store lives."""
    explicit = os.environ.get(ENV_STORE)
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("LEDGERFLOW_HOME") or Path.home() / ".ledgerflow")
    return home / "trust.json"


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


# -- granting ----------------------------------------------------------------------------


def trust(ledger: str | os.PathLike[str] | None = None, *, remember: bool = False) -> None:
    """Allow unpickling the values of a ledger file, or (no argument) of every ledger, for
    the rest of this process. remember=True keeps the trust of that file in the user's
    trust store, for later processes too (`ledgerflow trust PATH` does the same)."""
    global _trust_all
    if ledger is None:
        if remember:
            raise ValueError("remember=True needs the ledger file to trust")
        _trust_all = True
        return
    _trusted_paths.add(_real(ledger))
    if remember:
        from .ledger import Ledger

        opened = Ledger.open(ledger, readonly=True)
        _record("trusted", opened.ledger_id, opened.path)


def record_own(ledger_id: str, path: str | os.PathLike[str]) -> None:
    """Note in the store that this user created the ledger `ledger_id` at `path`."""
    _record("own", ledger_id, path)


def _record(kind: str, ledger_id: str, path: str | os.PathLike[str]) -> None:
    entry = {"ledger_id": ledger_id, "path": _real(path)}

    def add(doc: dict[str, Any]) -> None:
        entries = [e for e in doc.get(kind, []) if e != entry] + [entry]
        doc[kind] = entries[-MAX_ENTRIES:]

    try:
        _update(add)
    except OSError:
        pass  # a read-only home: the ledger works, its pickles just need --trust later


# -- deciding ----------------------------------------------------------------------------


def trusts_everything() -> bool:
    return _trust_all or os.environ.get(ENV_TRUST, "").lower() in ("1", "true", "yes")


def ledger_trusted(ledger: Ledger) -> bool:
    """The user trusts this whole file (explicitly, or everything)."""
    if trusts_everything() or _real(ledger.path) in _trusted_paths:
        return True
    return _listed("trusted", ledger)


def ledger_is_own(ledger: Ledger) -> bool:
    """This user created this ledger here (its id at its real path is in the store)."""
    return _listed("own", ledger)


def run_trusted(ledger: Ledger, run_pk: int) -> bool:
    """May the pickles of run `run_pk` of this ledger be loaded?"""
    if ledger_trusted(ledger):
        return True
    if not ledger_is_own(ledger):
        return False
    from .reads import imported_run_trusted

    try:
        imported = imported_run_trusted(ledger, run_pk)
    except sqlite3.Error:  # no such table: not a ledger this version wrote; trust nothing
        return False
    return imported is None or imported


def require_trust(ledger: Ledger, run_pk: int, what: str) -> None:
    """Raise UntrustedLedgerError unless `what` (a pickled value of run `run_pk`) may load."""
    if run_trusted(ledger, run_pk):
        return
    raise UntrustedLedgerError(
        f"{what} is a pickle from a ledger you have not trusted, and loading a pickle runs "
        f"code; if you trust where {ledger.path.name} came from, pass --trust, call "
        f"ledgerflow.trust('{ledger.path}'), run `ledgerflow trust {ledger.path}` (remembered), "
        f"or set {ENV_TRUST}=1"
    )


def _listed(kind: str, ledger: Ledger) -> bool:
    ledger_id = ledger.ledger_id
    if not ledger_id:
        return False
    wanted = {"ledger_id": ledger_id, "path": _real(ledger.path)}
    return wanted in _read().get(kind, [])


# -- the store file ----------------------------------------------------------------------


def _read() -> dict[str, Any]:
    global _cache
    path = store_path()
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (str(path), st.st_mtime_ns, st.st_size, st.st_ino)
    with _lock:
        if _cache is not None and _cache[0] == key:
            return _cache[1]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    with _lock:
        _cache = (key, doc)
    return doc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the store, held while it is read, changed and replaced."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _update(change: Any) -> None:
    path = store_path()
    with _locked(path):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                doc = {}
        except FileNotFoundError:
            doc = {}
        except ValueError:
            doc = {}  # a damaged store grants nothing; start it again
        change(doc)
        doc["version"] = 1
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
