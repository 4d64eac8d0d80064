"""Readers that are not ledgerflow: a plain `sqlite3` connection with no busy timeout, and
read-only views of a ledger in a folder the reader cannot write."""

from __future__ import annotations

import sqlite3
import threading
import warnings

import pytest

from ledgerflow import sql
from ledgerflow.connections import StaleViewWarning
from ledgerflow.ledger import Ledger

from .helpers import FLOWS, query, run_flow

KILLABLE = FLOWS / "reliability" / "killable.py"


def test_a_plain_reader_without_busy_timeout_never_sees_locked_as_runs_end(db_path):
    # Each run's process is the last to close the file when it exits. SQLite's own
    # checkpoint-on-close held an EXCLUSIVE lock meanwhile: a reader opening then got
    # "database is locked" (SQLITE_BUSY, hundreds of times over 6 runs). Ledgers skip it.
    #
    # What SQLite itself does remains: the first connection to open a WAL file that no
    # other connection holds open rebuilds its index from the WAL ("recovery"), and a
    # reader with no busy timeout that opens at that instant gets SQLITE_BUSY_RECOVERY
    # (this reader holds no connection between its queries, so each run's start can be
    # that first opener). Any busy timeout waits it out (Python's default is 5 s); no
    # option of SQLite's skips it. So that one code is allowed here, and no other.
    run_flow(KILLABLE, "--width", "2", db=db_path)
    stop, errors, queries = threading.Event(), [], [0]

    def read() -> None:
        while not stop.is_set():
            conn = sqlite3.connect(db_path, timeout=0)  # a new connection each time
            try:
                conn.execute("select count(*) from runs").fetchall()
                queries[0] += 1
            except sqlite3.OperationalError as e:
                if e.sqlite_errorname != "SQLITE_BUSY_RECOVERY":  # type: ignore[attr-defined]
                    errors.append(f"{e.sqlite_errorname}: {e}")  # type: ignore[attr-defined]
            finally:
                conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(6):
            run_flow(KILLABLE, "--width", "10", "--executor", "process", db=db_path)
    finally:
        stop.set()
        reader.join()
    assert queries[0] > 0 and errors == []
    # The file alone still holds every run (a last PASSIVE checkpoint at exit).
    copy = db_path.with_name("copy.db")
    copy.write_bytes(db_path.read_bytes())
    assert query(copy, "select count(*) from run") == [(7,)]


def test_closing_a_ledger_skips_sqlites_checkpoint_on_close(db_path):
    # The guard the test above no longer exercises (a run's process ends without closing
    # its connection): SQLite's checkpoint when the last connection to the file closes,
    # which holds the EXCLUSIVE lock that refused readers, also deletes the -wal file. A
    # ledger's close skips it (connections.no_checkpoint_on_close), so the file stays.
    from .test_ledger import new_run

    ledger = Ledger(db_path)
    new_run(ledger, "1")
    ledger.close()
    assert db_path.with_name(db_path.name + "-wal").exists()
    assert query(db_path, "select count(*) from run") == [(1,)]


def _pretend_folder_unwritable(monkeypatch, folder) -> None:
    import ledgerflow.ledger as ledger_module

    real = ledger_module.os.access

    def access(path, mode, *args, **kwargs):
        if str(path) == str(folder) and mode == ledger_module.os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(ledger_module.os, "access", access)


def _ledger_with_runs_in_its_wal(db_path, runs: int) -> Ledger:
    """A writer that keeps its connection open with commits still only in the WAL."""
    from .test_ledger import new_run

    Ledger(db_path).close()  # the schema in the file itself
    writer = Ledger(db_path)
    writer.execute("pragma wal_autocheckpoint = 0")
    for i in range(runs):
        new_run(writer, str(i))
    return writer


def test_a_reader_that_cannot_write_the_folder_sees_what_the_wal_holds(db_path, monkeypatch):
    writer = _ledger_with_runs_in_its_wal(db_path, 3)
    assert query(db_path, "select count(*) from run") == [(3,)]
    _pretend_folder_unwritable(monkeypatch, db_path.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an exact view: no staleness warning
        reader = Ledger(db_path, readonly=True)
        assert reader.execute("select count(*) from run").fetchone() == (3,)
        assert sql("select count(*) as n from runs", ledger=db_path)[0]["n"] == 3
    reader.close()
    writer.close()


def test_a_reader_that_cannot_see_the_wal_says_the_view_may_be_stale(db_path, monkeypatch):
    writer = _ledger_with_runs_in_its_wal(db_path, 2)
    shm = db_path.with_name(db_path.name + "-shm")
    shm.unlink()  # as when only the .db and -wal files were copied to a read-only place
    _pretend_folder_unwritable(monkeypatch, db_path.parent)
    with pytest.warns(StaleViewWarning, match="may miss the latest changes"):
        reader = Ledger(db_path, readonly=True)
    assert reader.stale and reader.execute("select count(*) from run").fetchone() == (0,)
    reader.close()
    writer.db.close_all()
