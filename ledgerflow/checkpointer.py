"""Copying the WAL into the ledger file in a background thread.

In WAL mode every committed page is written twice: into the -wal file at commit, and into the
ledger file by a checkpoint. SQLite checkpoints inside the commit that crosses 1,000 pages,
so a task that stores a 200 MB value waits for both copies. Commits that add big blobs turn
that off for themselves and ask this thread instead, which copies while the next task runs
(measured: 192 MB of chunks, 0.83 s to commit with the checkpoint, 0.48 s without). So do
commits that find a large WAL another process left (`wal_is_large`): a task in its own
process commits its big values itself.

A writer closing the file copies what the WAL holds into it (`checkpoint_and_shrink`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

# At close, a WAL file bigger than this is started over and shrunk to a few pages.
WAL_KEPT_AT_CLOSE = 256 << 10


class Checkpointer:
    """One daemon thread, started on the first request, running PASSIVE checkpoints (they
    never block readers or writers, and give way to another checkpoint in progress)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]):
        self._connect = connect
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        # Off in a task's own process (taskblobs.LedgerBlobs): it ends with os._exit, which
        # would cut a checkpoint short, and SQLite records a checkpoint's progress only at
        # its end, so the copy would be made again. The runtime's next commit finds the WAL
        # large (wal_is_large) and copies it in its own thread.
        self.enabled = True

    def request(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._loop,
                    args=(self._stop,),
                    name="ledgerflow-checkpoint",
                    daemon=True,
                )
                self._thread.start()
        self._wanted.set()

    def _loop(self, stop: threading.Event) -> None:
        conn = self._connect()
        while True:
            self._wanted.wait()
            self._wanted.clear()
            # A failed checkpoint loses nothing: the pages stay in the WAL for the next one.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if stop.is_set():
                return

    def finish(self) -> None:
        """Run a last checkpoint if one was asked for, then stop the thread. Call before
        the ledger's connections close, so none closes under a running checkpoint."""
        with self._lock:
            thread, stop, self._thread, self._stop = self._thread, self._stop, None, None
        if thread is None or stop is None:
            return
        stop.set()
        self._wanted.set()
        thread.join()


def wal_is_large(path: Path) -> bool:
    """True when the ledger's WAL file holds more than SQLite's automatic checkpoint would
    copy quickly (it may be copied already: that costs only a background PASSIVE checkpoint
    finding nothing to do). A commit that finds it so leaves the copy to this module's
    thread: the runtime's tiny commit after a task that stored a 200 MB value (in its own
    process, so its pages are in the WAL) would otherwise copy them all inside the commit
    (measured: 0.16-0.3 s of the runtime's wall, between two tasks)."""
    try:
        return os.stat(f"{path}-wal").st_size > LARGE_WAL
    except OSError:
        return False


# Above SQLite's own 1,000-page autocheckpoint (8 MB at 8 KB pages).
LARGE_WAL = 16 << 20


def checkpoint_and_shrink(conn: sqlite3.Connection, path: Path, restart_wal: Callable[[], None],
                          size_limit: int) -> None:  # fmt: skip
    """Copy what the WAL holds into the file (PASSIVE: never blocks a reader), so that the
    .db file alone holds every commit; then shrink a large WAL. Writers' connections skip
    SQLite's own checkpoint on close, which locks every reader out while it runs (see
    connections.no_checkpoint_on_close). `restart_wal` makes a small write."""
    for _ in range(10):
        # A reader in the middle of a query keeps frames from being copied; readers'
        # queries are short: try again briefly. The next process to open the file
        # first must otherwise replay a large WAL, and readers with no busy timeout
        # meet "database is locked" meanwhile.
        _, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames == done:
            break
        time.sleep(0.005)
    wal = Path(f"{path}-wal")
    if frames == done and wal.exists() and wal.stat().st_size > WAL_KEPT_AT_CLOSE:
        # All copied, but the file keeps its size until a write starts the WAL over, when
        # it shrinks to journal_size_limit: make that small write with the limit at 0, so
        # what stays beside the ledger is a few pages.
        conn.execute("PRAGMA journal_size_limit = 0")
        restart_wal()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        conn.execute(f"PRAGMA journal_size_limit = {size_limit}")
