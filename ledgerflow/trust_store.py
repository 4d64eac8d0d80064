"""Whose pickles may be loaded. Unpickling runs code, so a pickled value loads only when the
run that holds it is trusted; JSON values (numbers, strings, lists and dicts of them) load
from anywhere without it.

Trust rests on a per-user trust store kept *outside* every ledger —
`$LEDGERFLOW_TRUST_STORE`, else `trust.json` in `$LEDGERFLOW_HOME` (default
`~/.ledgerflow`) — never on anything inside the file alone: whoever sent a file wrote every
byte of it (`machine_id`, ledger ids, hosts, an `imported_run` table: all copyable, none
grants anything). What the store records is bound to what the sender cannot reproduce:

- **A trusted file** (`ledgerflow trust PATH`, `ledgerflow.trust(path, remember=True)`) is
  recorded as its real path, the ledger id it declares, and a *fingerprint of each run it
  held when the user trusted it*: the SHA-256 of the run's pathspec and of the sorted
  SHA-256s of every blob the run references (artifacts, S3 objects;
  `sharing.run_fingerprints`). Every blob is verified against its SHA-256 before it is
  decoded, so a run whose fingerprint is in the store can only ever decode the very bytes
  the user looked at and trusted. Replacing the file by another one that copies its ledger
  id, or adding runs to it, gains nothing: a changed or new run has no recorded fingerprint
  (the message says so and how to trust it as it is now). Trust is for that path too: a copy
  of the file elsewhere is not what was trusted.
- **The user's own ledgers** are recorded when ledgerflow creates them here (only a file
  with no tables at all is new, see identify.py): their id, real path and file identity
  (`st_dev`, `st_ino`). A file the sender made never has the inode of a ledger created on the
  user's disk; saving it over one at the same path makes a new file (a new inode) unless it
  is written into the old one in place (`cp` over it) — and then it must also carry the
  ledger's random id, which only someone given a copy of that very file knows.
- **Runs imported into an own ledger** (`import`, `export`) are listed in its `imported_run`
  table with the ledger id of their source and whether they were trusted there; the copy
  writes that table, nothing in the source decides it. An imported run is trusted when it
  was trusted where it came from (trust-then-import), when the user trusts its source
  afterwards (`ledgerflow trust --source ID`, trust_sources.py), or when its fingerprint is
  one the user trusted in a file (`ledgerflow trust FILE` after the import works the same as
  before it).

Trusting one's own ledger is refused (`ledgerflow trust` says so): its own runs load
already, and trusting the whole file would extend to every run imported into it later.
`ledgerflow.trust(path)` / `--trust` (this process only) and `LEDGERFLOW_TRUST=1` trust a
whole file, or everything, for a process; the user asks for them knowingly.
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

from .clock import now_iso
from .exceptions import LedgerflowError, UntrustedLedgerError

if TYPE_CHECKING:
    from .ledger import Ledger

ENV_TRUST = "LEDGERFLOW_TRUST"
ENV_STORE = "LEDGERFLOW_TRUST_STORE"
MAX_ENTRIES = 10_000  # the oldest records go first past this many of a kind
STORE_VERSION = 2  # 1: trusted files by (ledger id, path) alone; such entries grant nothing

_lock = threading.Lock()
_trust_all = False
_trusted_paths: set[str] = set()
_cache: tuple[Any, dict[str, Any]] | None = None  # (file stat, contents)
_fingerprints: dict[tuple[Any, ...], str] = {}  # (path, file state, run pk) -> fingerprint


def store_path() -> Path:
    """Where this user's trust store lives."""
    explicit = os.environ.get(ENV_STORE)
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("LEDGERFLOW_HOME") or Path.home() / ".ledgerflow")
    return home / "trust.json"


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def _identity(path: str | os.PathLike[str]) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


# -- granting ----------------------------------------------------------------------------


def trust(ledger: str | os.PathLike[str] | None = None, *, remember: bool = False) -> None:
    """Allow unpickling the values of a ledger file, or (no argument) of every ledger, for
    the rest of this process. remember=True keeps the trust of that file's runs, as they are
    now, in the user's trust store, for later processes too (`ledgerflow trust PATH`)."""
    global _trust_all
    if ledger is None:
        if remember:
            raise ValueError("remember=True needs the ledger file to trust")
        _trust_all = True
        return
    if remember:
        from .ledger import Ledger

        remember_file(Ledger.open(ledger, readonly=True))
    _trusted_paths.add(_real(ledger))


def remember_file(ledger: Ledger) -> int:
    """Record in the store that the user trusts the runs `ledger` holds now (their
    fingerprints, at this path); returns how many. Refused for the user's own ledger."""
    if ledger_is_own(ledger):
        raise LedgerflowError(
            f"{ledger.path} is your own ledger: the runs you made in it load already, and "
            "trusting the whole file would also trust whatever is imported into it later; to "
            "trust runs imported into it, trust their source: `ledgerflow --db "
            f"{ledger.path} trust --list` names each source"
        )
    from .sharing import run_fingerprints

    runs = {spec: fp for spec, fp in run_fingerprints(ledger).values()}
    entry = {"ledger_id": ledger.ledger_id, "path": _real(ledger.path), "runs": runs,
             "trusted_at": now_iso()}  # fmt: skip

    def add(doc: dict[str, Any]) -> None:
        kept = [
            e for e in doc.get("trusted", []) if _valid_file_entry(e) and e["path"] != entry["path"]
        ]
        doc["trusted"] = (kept + [entry])[-MAX_ENTRIES:]

    _update(add)
    return len(runs)


def revoke_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Forget the trust of the file at `path`; the entries removed (none: nothing known)."""
    real = _real(path)
    removed: list[dict[str, Any]] = []

    def drop(doc: dict[str, Any]) -> None:
        entries = doc.get("trusted", [])
        removed.extend(e for e in entries if isinstance(e, dict) and e.get("path") == real)
        doc["trusted"] = [e for e in entries if not (isinstance(e, dict) and e.get("path") == real)]

    _update(drop)
    _trusted_paths.discard(real)
    return removed


def trusted_files() -> list[dict[str, Any]]:
    """The files the user trusts (path, ledger_id, runs, trusted_at), oldest first."""
    return [e for e in _read().get("trusted", []) if _valid_file_entry(e)]


def record_own(ledger_id: str, path: str | os.PathLike[str]) -> None:
    """Note in the store that this user created the ledger `ledger_id` at `path`."""
    entry = {"ledger_id": ledger_id, "path": _real(path), "file": _identity(path)}

    def add(doc: dict[str, Any]) -> None:
        kept = [
            e for e in doc.get("own", []) if isinstance(e, dict) and e.get("path") != entry["path"]
        ]
        doc["own"] = (kept + [entry])[-MAX_ENTRIES:]

    try:
        _update(add)
    except OSError:
        pass  # a read-only home: the ledger works, its pickles just need --trust later


# -- deciding ----------------------------------------------------------------------------


def trusts_everything() -> bool:
    return _trust_all or os.environ.get(ENV_TRUST, "").lower() in ("1", "true", "yes")


def ledger_trusted(ledger: Ledger) -> bool:
    """The user trusts this whole file for this process (or everything)."""
    return trusts_everything() or _real(ledger.path) in _trusted_paths


def ledger_is_own(ledger: Ledger) -> bool:
    """This user created this ledger here: its id, at its real path, in the very file
    (device and inode) ledgerflow created."""
    ledger_id = ledger.ledger_id
    if not ledger_id:
        return False
    real = _real(ledger.path)
    for entry in _read().get("own", []):
        if isinstance(entry, dict) and entry.get("ledger_id") == ledger_id and \
                entry.get("path") == real:  # fmt: skip
            if entry.get("file") is None:  # recorded by an earlier ledgerflow: bound now
                record_own(ledger_id, real)
                return True
            return bool(entry["file"] == _identity(real))
    return False


def run_trusted(ledger: Ledger, run_pk: int) -> bool:
    """May the pickles of run `run_pk` of this ledger be loaded?"""
    if ledger_trusted(ledger):
        return True
    if ledger_is_own(ledger):
        imported = _imported(ledger, run_pk)
        if imported is None or imported[1] == 1:  # made here, or its source is trusted
            return True
        return _fingerprint_trusted(ledger, run_pk, anywhere=True)
    return _fingerprint_trusted(ledger, run_pk, anywhere=False)


def require_trust(ledger: Ledger, run_pk: int, what: str) -> None:
    """Raise UntrustedLedgerError unless `what` (a pickled value of run `run_pk`) may load.
    The message names where the run came from, and never advises trusting one's own
    ledger."""
    if run_trusted(ledger, run_pk):
        return
    if ledger_is_own(ledger):
        source, _, imported_at = _imported(ledger, run_pk) or ("", 0, "")
        shown = shown_source(source)
        raise UntrustedLedgerError(
            f"{what} is a pickle in a run imported into {ledger.path.name} from ledger "
            f"{shown} (on {imported_at[:10]}), a source you have not trusted, and loading "
            "a pickle runs code; if you trust that source, run `ledgerflow --db "
            f"{ledger.path} trust --source {shown}` (or `ledgerflow trust FILE` with the file "
            "it came from)"
        )
    if _file_entry(ledger) is not None:
        raise UntrustedLedgerError(
            f"{what} is a pickle in a run that {ledger.path} did not hold as it is now when "
            "you trusted that file (the run changed or was added since), and loading a "
            f"pickle runs code; if you trust it as it is now, run `ledgerflow trust "
            f"{ledger.path}` again"
        )
    raise UntrustedLedgerError(
        f"{what} is a pickle from {ledger.path}, a ledger you have not trusted, and loading "
        f"a pickle runs code; if you trust where {ledger.path.name} came from, pass --trust, "
        f"call ledgerflow.trust('{ledger.path}'), run `ledgerflow trust {ledger.path}` "
        f"(remembered), or set {ENV_TRUST}=1"
    )


def _imported(ledger: Ledger, run_pk: int) -> tuple[str, int, str] | None:
    """(source ledger id, trusted, imported_at) of a run `import` copied in; None for a run
    made in this ledger."""
    from .reads import imported_run

    try:
        row = imported_run(ledger, run_pk)
    except sqlite3.Error:  # no such table: not a ledger this version wrote; trust nothing
        return ("", 0, "")
    return None if row is None else (str(row["source"]), row["trusted"], str(row["imported_at"]))


def shown_source(source: str) -> str:
    """A source ledger id as a message shows it: as is when it is a plain id one can type,
    else quoted with every control character escaped (the sender wrote it)."""
    if source and len(source) <= 64 and all(c.isascii() and (c.isalnum() or c in "._-")
                                            for c in source):  # fmt: skip
        return source
    return json.dumps(source)


def _file_entry(ledger: Ledger) -> dict[str, Any] | None:
    real, ledger_id = _real(ledger.path), ledger.ledger_id
    for entry in _read().get("trusted", []):
        if _valid_file_entry(entry) and entry["path"] == real and \
                entry.get("ledger_id") == ledger_id:  # fmt: skip
            return entry
    return None


def _valid_file_entry(entry: Any) -> bool:
    """A version-2 entry (version 1 kept no run fingerprints: it grants nothing)."""
    return isinstance(entry, dict) and isinstance(entry.get("path"), str) and \
        isinstance(entry.get("runs"), dict)  # fmt: skip


def _fingerprint_trusted(ledger: Ledger, run_pk: int, *, anywhere: bool) -> bool:
    """The run as it is now is one the user trusted in a file: in this very file (at its
    path, with its ledger id), or (`anywhere`: a run imported into an own ledger) in any."""
    entries = trusted_files() if anywhere else [e for e in [_file_entry(ledger)] if e]
    if not entries:
        return False
    pathspec, fingerprint = _fingerprint(ledger, run_pk)
    return any(entry["runs"].get(pathspec) == fingerprint for entry in entries)


def _fingerprint(ledger: Ledger, run_pk: int) -> tuple[str, str]:
    """(pathspec, fingerprint) of a run as the file holds it now (cached per file state)."""
    from .sharing import run_fingerprints

    state = [_identity(ledger.path), _stat_key(ledger.path),
             _stat_key(Path(f"{ledger.path}-wal"))]  # fmt: skip
    key = (str(ledger.path), repr(state), run_pk)
    cached = _fingerprints.get(key)
    if cached is None:
        found = run_fingerprints(ledger, [run_pk]).get(run_pk, ("", ""))
        if len(_fingerprints) > 10_000:
            _fingerprints.clear()
        _fingerprints[key] = cached = "\0".join(found)
    pathspec, _, fingerprint = cached.partition("\0")
    return pathspec, fingerprint


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


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
        doc["version"] = STORE_VERSION
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
