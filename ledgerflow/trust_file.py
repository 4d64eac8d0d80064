"""The user's trust store as a file: where it lives, reading it, changing it under a lock,
and the two kinds of record it keeps (own ledgers, trusted files). What those records grant
is decided in trust_store.py; this module only keeps them, so that `ledger.py` can record a
ledger it creates without reaching up into the code that reads ledgers to decide trust.

The store is `$LEDGERFLOW_TRUST_STORE`, else `trust.json` in `$LEDGERFLOW_HOME` (default
`~/.ledgerflow`): JSON, replaced whole (written beside it, then renamed) while an exclusive
`flock` on `trust.json.lock` is held, readable by the user alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ENV_STORE = "LEDGERFLOW_TRUST_STORE"
MAX_ENTRIES = 10_000  # the oldest records go first past this many of a kind
STORE_VERSION = 2  # 1: trusted files by (ledger id, path) alone; such entries grant nothing

_lock = threading.Lock()
_cache: tuple[Any, dict[str, Any]] | None = None  # (file stat, contents)


def store_path() -> Path:
    """Where this user's trust store lives."""
    explicit = os.environ.get(ENV_STORE)
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("LEDGERFLOW_HOME") or Path.home() / ".ledgerflow")
    return home / "trust.json"


def real_path(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def file_identity(path: str | os.PathLike[str]) -> list[int] | None:
    """(device, inode) of the file at `path`; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


# -- own ledgers -------------------------------------------------------------------------


def record_own(ledger_id: str, path: str | os.PathLike[str]) -> None:
    """Note in the store that this user created the ledger `ledger_id` at `path`."""
    entry = {"ledger_id": ledger_id, "path": real_path(path), "file": file_identity(path)}

    def add(doc: dict[str, Any]) -> None:
        kept = [
            e for e in doc.get("own", []) if isinstance(e, dict) and e.get("path") != entry["path"]
        ]
        doc["own"] = (kept + [entry])[-MAX_ENTRIES:]

    try:
        _update(add)
    except OSError:
        pass  # a read-only home: the ledger works, its pickles just need --trust later


def own_entries() -> list[dict[str, Any]]:
    """The ledgers this user created (ledger_id, path, file identity), oldest first."""
    return [e for e in read().get("own", []) if isinstance(e, dict)]


# -- trusted files -----------------------------------------------------------------------


def trusted_entries() -> list[dict[str, Any]]:
    """The files the user trusts (path, ledger_id, runs, trusted_at), oldest first."""
    return [e for e in read().get("trusted", []) if _valid_file_entry(e)]


def add_trusted(entry: dict[str, Any]) -> None:
    """Record a trusted file, replacing an earlier record of the same path."""

    def add(doc: dict[str, Any]) -> None:
        kept = [
            e for e in doc.get("trusted", []) if _valid_file_entry(e) and e["path"] != entry["path"]
        ]
        doc["trusted"] = (kept + [entry])[-MAX_ENTRIES:]

    _update(add)


def remove_trusted(real: str) -> list[dict[str, Any]]:
    """Forget every record of the file at the real path `real`; the records removed."""
    removed: list[dict[str, Any]] = []

    def drop(doc: dict[str, Any]) -> None:
        entries = doc.get("trusted", [])
        removed.extend(e for e in entries if isinstance(e, dict) and e.get("path") == real)
        doc["trusted"] = [e for e in entries if not (isinstance(e, dict) and e.get("path") == real)]

    _update(drop)
    return removed


def _valid_file_entry(entry: Any) -> bool:
    """A version-2 entry (version 1 kept no run fingerprints: it grants nothing)."""
    return isinstance(entry, dict) and isinstance(entry.get("path"), str) and \
        isinstance(entry.get("runs"), dict)  # fmt: skip


# -- the file ----------------------------------------------------------------------------


def read() -> dict[str, Any]:
    """The store's contents ({} when there is none or it is damaged), cached by file state."""
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
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _update(change: Callable[[dict[str, Any]], None]) -> None:
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
        doc["version"] = STORE_VERSION
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(_dumps(doc), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


def _dumps(doc: dict[str, Any]) -> str:
    """The store as text, one record a line. Each record goes through json's C encoder
    (`indent=` switches json to its Python one): with 535 records, 2.4 ms instead of 3.6 ms
    of every new ledger's start-up, a cost that grows with every ledger the user makes, up
    to MAX_ENTRIES of each kind. One C encoder made for the whole store, not one per record
    as `json.dumps` makes: 1.1 ms instead of 2.4 ms at 782 records, the same text."""
    encode = _record_encoder()
    parts = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            rows = ",\n  ".join([encode(entry) for entry in value])
            parts.append(f"{json.dumps(key)}: [\n  {rows}\n ]")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def _record_encoder() -> Callable[[Any], str]:
    """`json.dumps` with its default settings, as one reusable C encoder where json has one.
    Without the circular-reference check: the records come from JSON text or are built
    here, so none holds itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - a Python without json's C speedups
        return json.dumps
    encoder = make(None, json.encoder.JSONEncoder().default,
                   json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False,
                   True)  # fmt: skip
    return lambda value: "".join(encoder(value, 0))
