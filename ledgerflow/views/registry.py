"""Which `ledgerflow ui` servers run on this machine, so notebook views can link to them.

Owned by the UI. A server that starts serving writes `$LEDGERFLOW_HOME/ui/<pid>-<port>.json`
(the ledger's real path and the server's URL) and removes it when it stops; `url_for`
answers the URL of a live server browsing a given ledger (its process still running), or
None. Nothing here is trusted for anything but drawing a link.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


def _folder() -> Path:
    home = Path(os.environ.get("LEDGERFLOW_HOME") or Path.home() / ".ledgerflow")
    return home / "ui"


def register(ledger: Path, url: str, port: int) -> Path | None:
    """Record this process's server; the file to remove when it stops (None if unwritable)."""
    entry = _folder() / f"{os.getpid()}-{port}.json"
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(json.dumps({"ledger": str(Path(ledger).resolve()), "url": url,
                                     "pid": os.getpid()}))  # fmt: skip
    except OSError:
        return None
    return entry


def unregister(entry: Path | None) -> None:
    if entry is not None:
        with contextlib.suppress(OSError):
            entry.unlink()


def url_for(ledger: str | os.PathLike[str]) -> str | None:
    """The URL of a running `ledgerflow ui` browsing this ledger, or None."""
    wanted = str(Path(ledger).resolve())
    try:
        entries = sorted(_folder().glob("*.json"))
    except OSError:
        return None
    for entry in entries:
        try:
            doc = json.loads(entry.read_text())
            pid, url = int(doc["pid"]), str(doc["url"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if doc.get("ledger") != wanted or not url.startswith("http://"):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            unregister(entry)  # its server is gone
            continue
        except PermissionError:
            pass
        return url.rstrip("/")
    return None
