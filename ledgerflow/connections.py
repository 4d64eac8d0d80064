"""SQLite connections to a ledger file: one per thread, their URIs, and what opening and
closing them must (not) do.

- Writers' connections open the file `mode=rw` (the first may create it), readers'
  `mode=ro` with `query_only`; in a folder a reader cannot write, `readonly_target` picks
  the URI that still sees the WAL, or says the view may be stale.
- Writers' connections skip SQLite's checkpoint on close (`no_checkpoint_on_close`): it
  locks every reader out while it runs. Ledger.checkpoint_before_close replaces it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .exceptions import LedgerError

BUSY_TIMEOUT_MS = 30_000


class StaleViewWarning(UserWarning):
    """A read-only view of a ledger that may miss its latest changes (see readonly_target)."""


def _gone(path: Path) -> LedgerError:
    return LedgerError(
        f"ledger {path} was deleted or moved while in use; nothing more is written. "
        "Restore the file and resume the run, or start a new one"
    )


def _uri_path(path: Path) -> str:
    """A path for an SQLite `file:` URI ('?', '#' and '%' escaped)."""
    return str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def _jitter(low: float, high: float) -> float:
    """A random pause length, so that waiting writers do not retry in step."""
    import random  # only writers that meet a lock pay for it

    return random.uniform(low, high)


def readonly_target(path: Path) -> tuple[str, bool]:
    """The URI that opens a ledger read-only, and whether that view may be stale.

    `mode=ro` sees everything, WAL included, but needs the -shm file, which SQLite creates
    beside the ledger, or finds there. In a folder we cannot write and without a readable
    -shm, only `immutable=1` opens the file: it ignores the WAL, so when the WAL holds
    anything the view may miss the latest changes."""
    target = f"file:{_uri_path(path)}?mode=ro"
    if os.access(path.parent, os.W_OK):
        return target, False
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if shm.exists() and os.access(shm, os.R_OK):
        try:  # a writer's -shm we may read: the exact view
            probe = sqlite3.connect(target, uri=True)
            try:
                probe.execute("select count(*) from sqlite_master").fetchone()
                return target, False
            finally:
                probe.close()
        except sqlite3.Error:
            pass
    stale = wal.exists() and wal.stat().st_size > 0
    return target + "&immutable=1", stale


def warn_stale(path: Path) -> None:
    import warnings

    warnings.warn(
        f"{path}: its folder is not writable and its -wal file cannot be read without "
        "one, so what is shown may miss the latest changes; copy the ledger (with its -wal "
        "file) to a writable folder for the full view",
        StaleViewWarning, stacklevel=3,
    )  # fmt: skip


# sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL): Python 3.12 has
# Connection.setconfig for it; on 3.11 we reach the C API through ctypes.
_NO_CKPT_ON_CLOSE = 1006


def no_checkpoint_on_close(conn: sqlite3.Connection, path: Path) -> None:
    """Stop SQLite checkpointing when this process closes the last connection to the file.
    That checkpoint holds an EXCLUSIVE lock on the database while it copies the WAL and
    deletes it: a reader with no busy timeout (a plain `sqlite3` shell, pandas) starting a
    query then gets "database is locked" (measured: hundreds of refused queries in 0.1-0.3 s
    each time the last of several writer processes exits). Ledger.checkpoint_before_close
    runs a PASSIVE checkpoint instead, which never blocks a reader; the -wal file stays.

    The connection's `sqlite3 *` is read from the CPython object (its first field) and
    checked by asking SQLite for its file name: on any doubt nothing is done."""
    setconfig = getattr(conn, "setconfig", None)
    if setconfig is not None:  # Python 3.12+
        with contextlib.suppress(Exception):
            setconfig(_NO_CKPT_ON_CLOSE, True)
        return
    import platform
    import sys

    if sys.platform == "darwin" and platform.machine() == "arm64":
        return  # variadic C calls there pass arguments unlike ctypes' plain calls
    try:
        import _sqlite3
        import ctypes

        lib = ctypes.CDLL(_sqlite3.__file__)
        handle = ctypes.c_void_p.from_address(id(conn) + 2 * ctypes.sizeof(ctypes.c_void_p))
        lib.sqlite3_db_filename.restype = ctypes.c_char_p
        lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        name = lib.sqlite3_db_filename(handle.value, b"main")
        if not name or os.path.realpath(os.fsdecode(name)) != os.path.realpath(path):
            return
        now = ctypes.c_int(-1)
        lib.sqlite3_db_config(ctypes.c_void_p(handle.value), ctypes.c_int(_NO_CKPT_ON_CLOSE),
                              ctypes.c_int(1), ctypes.byref(now))  # fmt: skip
        # SQLite writes the setting now in force into `now`: 1 if it took.
    except Exception:  # pragma: no cover  # noqa: BLE001 - an unusual build: keep the default
        return


def switch_to_wal(conn: sqlite3.Connection) -> None:
    """Switching a brand-new file to WAL while other processes create it too can return
    "database is locked" at once, without waiting on the busy timeout: retry a while."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = wal").fetchall()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(_jitter(0.01, 0.05))


class Connections:
    """One SQLite connection per thread, in autocommit mode (Ledger.write() issues BEGIN
    itself), each set up with the ledger's pragmas; close_all() closes every thread's."""

    def __init__(self, target: str, uri: bool, pragmas: list[tuple[str, Any]], path: Path,
                 then: str | None = None):  # fmt: skip
        self.target, self.uri, self.pragmas, self.path = target, uri, pragmas, path
        self._then = then  # the target for connections after the first
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open_with_retries()
            if self._then is not None:
                self.target, self._then = self._then, None
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _open_with_retries(self) -> sqlite3.Connection:
        # Switching a brand-new file to WAL while other processes create it too can return
        # "database is locked" at once, without waiting on the busy timeout: retry a while.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                conn = sqlite3.connect(self.target, uri=self.uri, isolation_level=None,
                                       check_same_thread=False,
                                       timeout=BUSY_TIMEOUT_MS / 1000)  # fmt: skip
            except sqlite3.OperationalError:
                if not self.path.exists():
                    raise _gone(self.path) from None
                raise
            try:
                for name, value in self.pragmas:
                    conn.execute(f"PRAGMA {name} = {value}")
                if not self.target.split("?", 1)[1].startswith("mode=ro"):
                    no_checkpoint_on_close(conn, self.path)
                return conn
            except sqlite3.OperationalError as e:
                conn.close()
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(_jitter(0.01, 0.05))
            except BaseException:
                conn.close()
                raise

    def has_connections(self) -> bool:
        return bool(self._all)

    def close_all(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()
