"""A new ledger is made at the latest schema at once, from ledgerflow/ddl_latest.py (schema.
create_latest), instead of through every migration: it must be the very file the migrations
make. Here: the snapshot is what the migrations leave; a new ledger and ledgers made at
every earlier version then migrated hold the same objects, version and rows; a snapshot
left behind by a new migration falls back to the migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ledgerflow import ddl_latest, identify
from ledgerflow.ledger import Ledger
from ledgerflow.schema import MIGRATIONS, SCHEMA_VERSION, create_latest, migrated_objects


def _shape(path: Path) -> dict[str, object]:
    """What a ledger file is, told apart from what differs by nature (its id, its dates)."""
    conn = sqlite3.connect(path)
    try:
        objects = conn.execute(
            "select type, name, tbl_name, sql from sqlite_master order by rowid"
        ).fetchall()
        rows = {}
        for (name,) in conn.execute(
            "select name from sqlite_master where type = 'table' and sql not like 'CREATE VIRTUAL%'"
        ):
            # meta's values differ by nature (the id, dates, host), and closing a ledger
            # notes when it last restarted the WAL
            sql = (f'select * from "{name}"' if name != "meta"
                   else "select key from meta where key != 'wal_reset_at'")  # fmt: skip
            rows[name] = sorted(conn.execute(sql).fetchall(), key=repr)
        return {
            "objects": objects,
            "user_version": conn.execute("pragma user_version").fetchone()[0],
            "page_size": conn.execute("pragma page_size").fetchone()[0],
            "journal_mode": conn.execute("pragma journal_mode").fetchone()[0],
            "rows": rows,
        }
    finally:
        conn.close()


def _ledger_at(path: Path, version: int) -> Path:
    """A ledger file as ledgerflow left it at schema `version` (migrations 1..version)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("pragma page_size = 8192")
    conn.execute("pragma journal_mode = wal")
    conn.execute("begin immediate")
    for migration in MIGRATIONS[:version]:
        migration(conn)
    conn.execute(f"pragma user_version = {version}")
    conn.execute("insert into meta(key, value) values ('ledger_id', 'old'), "
                 "('created_at', '2026-01-01T00:00:00+00:00'), ('created_on', 'host')")  # fmt: skip
    conn.execute("commit")
    conn.close()
    return path


def _opened(path: Path) -> Path:
    Ledger.open(path)
    Ledger.forget(path)
    return path


def test_the_snapshot_is_what_the_migrations_leave():
    assert ddl_latest.VERSION == SCHEMA_VERSION, (
        "a migration was added: run `python scripts/schema_snapshot.py` to regenerate "
        "ledgerflow/ddl_latest.py"
    )
    if sqlite3.sqlite_version != ddl_latest.SQLITE_VERSION:
        pytest.skip(f"the snapshot was made by SQLite {ddl_latest.SQLITE_VERSION}, not "
                    f"{sqlite3.sqlite_version}: here the migrations run (tested below)")  # fmt: skip
    assert ddl_latest.OBJECTS == migrated_objects(SCHEMA_VERSION), (
        "ledgerflow/ddl_latest.py is not what the migrations make: run "
        "`python scripts/schema_snapshot.py`"
    )
    conn = sqlite3.connect(":memory:")
    assert create_latest(conn)  # the snapshot is what a new ledger is made from here
    assert (
        conn.execute(
            "select type, name, tbl_name, sql from sqlite_master order by rowid"
        ).fetchall()
        == ddl_latest.OBJECTS
    )


def test_a_new_ledger_is_the_file_a_ledger_migrated_from_version_1_is(tmp_path):
    fresh = _shape(_opened(tmp_path / "fresh.db"))
    migrated = _shape(_opened(_ledger_at(tmp_path / "v1.db", 1)))
    assert fresh == migrated
    assert fresh["user_version"] == SCHEMA_VERSION
    assert fresh["journal_mode"] == "wal" and fresh["page_size"] == 8192
    assert fresh["rows"]["meta"] == [("created_at",), ("created_on",), ("ledger_id",)]


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_ledger_of_every_earlier_version_still_opens_and_migrates_to_the_same(version, tmp_path):
    old = _ledger_at(tmp_path / f"v{version}.db", version)
    ledger = Ledger.open(old)
    assert ledger.ledger_id == "old"  # migrated in place, not made anew
    Ledger.forget(old)
    assert _shape(old) == _shape(_opened(tmp_path / "fresh.db"))


@pytest.mark.parametrize("why", ["behind the migrations", "made by another SQLite"])
def test_a_snapshot_that_does_not_apply_falls_back_to_the_migrations(why, tmp_path, monkeypatch):
    reference = _shape(_opened(tmp_path / "fresh.db"))
    if why == "behind the migrations":
        monkeypatch.setattr(ddl_latest, "VERSION", SCHEMA_VERSION - 1)
        monkeypatch.setattr(ddl_latest, "OBJECTS", migrated_objects(SCHEMA_VERSION - 1))
    else:  # its objects would be refused as changed if they were used
        changed = [(t, n, tbl, sql and sql.replace("CREATE", "create")) for t, n, tbl, sql
                   in migrated_objects(SCHEMA_VERSION)]  # fmt: skip
        monkeypatch.setattr(ddl_latest, "SQLITE_VERSION", "0.0.0")
        monkeypatch.setattr(ddl_latest, "OBJECTS", changed)
    assert not create_latest(sqlite3.connect(":memory:"))
    identify.expected_objects.cache_clear()
    try:
        assert _shape(_opened(tmp_path / "behind.db")) == reference
        assert identify.expected_objects(SCHEMA_VERSION) == {
            (kind, name, sql) for kind, name, _, sql in migrated_objects(SCHEMA_VERSION)
        }
    finally:
        identify.expected_objects.cache_clear()


def test_an_object_planted_in_a_new_ledger_is_still_refused(tmp_path):
    path = _opened(tmp_path / "planted.db")
    conn = sqlite3.connect(path)
    conn.execute("create trigger t after insert on run begin select 1; end")
    conn.commit()
    conn.close()
    with pytest.raises(Exception, match="trigger t"):
        Ledger.open(path)
