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
  `run_fingerprints`). Every blob is verified against its SHA-256 before it is
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

The store file itself (where it is, reading it, changing it under a lock) is trust_file.py,
which `ledger.py` uses to record a ledger it creates; this module decides.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import reads
from .clock import now_iso
from .exceptions import LedgerflowError, UntrustedLedgerError
from .trust_file import (
    add_trusted,
    file_identity,
    own_entries,
    real_path,
    record_own,
    remove_trusted,
    trusted_entries,
)

if TYPE_CHECKING:
    from .ledger import Ledger

ENV_TRUST = "LEDGERFLOW_TRUST"

_trust_all = False
_trusted_paths: set[str] = set()
_fingerprints: dict[tuple[Any, ...], str] = {}  # (path, file state, run pk) -> fingerprint


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
    _trusted_paths.add(real_path(ledger))


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
    runs = {spec: fp for spec, fp in run_fingerprints(ledger, reads.run_pks(ledger)).values()}
    add_trusted({"ledger_id": ledger.ledger_id, "path": real_path(ledger.path), "runs": runs,
                 "trusted_at": now_iso()})  # fmt: skip
    return len(runs)


def revoke_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Forget the trust of the file at `path`; the entries removed (none: nothing known)."""
    real = real_path(path)
    _trusted_paths.discard(real)
    return remove_trusted(real)


def trusted_files() -> list[dict[str, Any]]:
    """The files the user trusts (path, ledger_id, runs, trusted_at), oldest first."""
    return trusted_entries()


def run_fingerprints(ledger: Ledger, run_pks: list[int]) -> dict[int, tuple[str, str]]:
    """run pk -> (pathspec, fingerprint) for the given runs. The fingerprint is the SHA-256
    of the pathspec and of the sorted SHA-256s of every blob the run references (its
    artifacts and S3 objects), each with the encoding its blob row gives it: the only bytes
    its pickles can come from, each verified against its SHA-256 before it is decoded, and
    how they are decoded."""
    runs: dict[int, tuple[str, set[str]]] = {
        pk: (f"{flow}/{run_id}", set()) for pk, flow, run_id in reads.run_pathspecs(ledger, run_pks)
    }
    for run_pk, sha, encoding in reads.run_blob_refs(ledger, run_pks):
        if run_pk in runs:
            runs[run_pk][1].add(f"{sha}:{encoding}")
    found = {}
    for pk, (pathspec, blob_shas) in runs.items():
        digest = hashlib.sha256(b"ledgerflow run fingerprint 1\0")
        digest.update(pathspec.encode("utf-8", "surrogatepass") + b"\0")
        digest.update("\0".join(sorted(blob_shas)).encode("utf-8", "surrogatepass"))
        found[pk] = (pathspec, digest.hexdigest())
    return found


# -- deciding ----------------------------------------------------------------------------


def trusts_everything() -> bool:
    return _trust_all or os.environ.get(ENV_TRUST, "").lower() in ("1", "true", "yes")


def ledger_trusted(ledger: Ledger) -> bool:
    """The user trusts this whole file for this process (or everything)."""
    return trusts_everything() or real_path(ledger.path) in _trusted_paths


def ledger_is_own(ledger: Ledger) -> bool:
    """This user created this ledger here: its id, at its real path, in the very file
    (device and inode) ledgerflow created."""
    ledger_id = ledger.ledger_id
    if not ledger_id:
        return False
    real = real_path(ledger.path)
    for entry in own_entries():
        if entry.get("ledger_id") == ledger_id and entry.get("path") == real:
            if entry.get("file") is None:  # recorded by an earlier ledgerflow: bound now
                record_own(ledger_id, real)
                return True
            return bool(entry["file"] == file_identity(real))
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
    try:
        row = reads.imported_run(ledger, run_pk)
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
    real, ledger_id = real_path(ledger.path), ledger.ledger_id
    for entry in trusted_entries():
        if entry["path"] == real and entry.get("ledger_id") == ledger_id:
            return entry
    return None


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
    state = [file_identity(ledger.path), _stat_key(ledger.path),
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
