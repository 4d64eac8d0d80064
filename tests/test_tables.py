"""One shape per table: the declarations in `ledgerflow/tables.py` are what a fresh ledger's
tables hold (`pragma table_info`), and what the writers, the reads and export/import take
their columns from. A column added by a migration without its declaration (or the reverse)
fails here; so does a NOT NULL task column that `records.TaskRecord` does not carry, or a
record field that is no column (a misspelt one)."""

from __future__ import annotations

import sqlite3

import pytest

from ledgerflow import reads, sharing
from ledgerflow.ledger import Ledger
from ledgerflow.records import TASK_RECORD_NOT_COLUMNS, TaskRecord
from ledgerflow.schema import MIGRATIONS, OUR_TABLES, add_declared_column
from ledgerflow.tables import FTS_SHADOWS, FTS_TABLES, LOG_FTS_TABLES, TABLES, TASK, Column, Table


def _table_info(conn: sqlite3.Connection, table: str) -> list[tuple]:
    return [tuple(row[1:]) for row in conn.execute(f"pragma table_info({table})")]


def _declared(table: Table) -> list[tuple]:
    return [(c.name, c.type, int(c.notnull), c.default, c.pk) for c in table.columns]


def test_every_declared_table_is_what_a_fresh_ledger_holds(db_path):
    Ledger.open(db_path)
    conn = sqlite3.connect(db_path)
    made = {name for (name,) in conn.execute("select name from sqlite_master where type = 'table'")}
    assert made - {"sqlite_sequence"} == {*TABLES, *FTS_TABLES, *FTS_SHADOWS, *LOG_FTS_TABLES}
    for name, table in TABLES.items():
        assert _table_info(conn, name) == _declared(table), name


def test_a_ledger_migrated_from_version_1_has_the_declared_shape_too(tmp_path):
    # Old files reach the same shape through the migrations after the first.
    conn = sqlite3.connect(tmp_path / "old.db")
    MIGRATIONS[0](conn)
    conn.execute("pragma user_version = 1")
    conn.execute("insert into meta(key, value) values ('ledger_id', 'x'), ('created_at', 'y')")
    conn.commit()
    conn.close()
    Ledger.open(tmp_path / "old.db")
    conn = sqlite3.connect(tmp_path / "old.db")
    for name, table in TABLES.items():
        assert [c[0] for c in _table_info(conn, name)] == [c.name for c in table.columns], name


def test_a_new_column_is_added_from_its_declaration_and_only_once(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("create table t (id integer not null primary key)")
    table = Table("t", Column("id", "INTEGER", True, pk=1), Column("note"),
                  Column("n", "INTEGER", True, default="0"))  # fmt: skip
    for _ in range(2):  # idempotent, as every migration is
        add_declared_column(conn, table, "note")
        add_declared_column(conn, table, "n")
    assert _table_info(conn, "t") == _declared(table)


def test_the_known_table_names_come_from_the_declarations():
    assert set(TABLES) <= set(OUR_TABLES)


def test_a_task_record_carries_every_required_task_column_and_nothing_undeclared():
    # The writer reads each declared column from the record by its Python name.
    fields = set(TaskRecord.__struct_fields__)  # type: ignore[attr-defined]
    assert {c.key for c in TASK.columns if c.notnull and c.name != "id"} <= fields
    assert fields - {c.key for c in TASK.columns} == set(TASK_RECORD_NOT_COLUMNS)


def test_a_nullable_column_no_record_carries_yet_is_written_null():
    """A column a migration just added: declared, no field on the record yet."""
    table = Table("task", *TASK.columns, Column("note"))
    rec = TaskRecord(1, "start", "1", "running", "t", None)
    names = ("step", "note")
    assert table.values(rec, names) == ("start", None)
    required = Table("task", *TASK.columns, Column("note", notnull=True))
    with pytest.raises(AttributeError, match="note"):
        required.values(rec, names)


def test_the_reads_and_export_take_the_declared_task_columns():
    listed = {c.name for c in TASK.columns if c.listed} - {"id", "run_id"}
    assert {part.split(" as ")[1] for part in reads._TASK_COLUMNS.split(", ")} == listed | {"pk"}
    assert set(sharing._TASK_COLUMNS) == {c.name for c in TASK.columns} - {"id", "run_id"}


def test_a_task_row_written_and_read_back_holds_every_declared_value(db_path):
    from ledgerflow import writes

    ledger = Ledger.open(db_path)
    run_pk = writes.create_run(ledger, "F", "1", params={}, user="u", code=None,
                               script_name=None)  # fmt: skip
    rec = TaskRecord(run_pk, "start", "1", "failed", "2026-01-01T00:00:00Z",
                     "2026-01-01T00:00:01Z", attempt=2, foreach_index=3,
                     foreach_stack=[["a", "x", 4, 3]], exception_type="builtins.ValueError",
                     exception="bad", traceback="tb", origin_pathspec="F/0/start/1",
                     transition={"targets": ["end"]}, host="w1")  # fmt: skip
    (pk,) = writes.record_tasks(ledger, [rec])
    row = reads.one(ledger, "select * from task where id = ?", (pk,))
    assert row is not None
    assert row == {"id": pk, **dict(zip(TASK.written, TASK.values(rec, TASK.written)))}
    assert row["foreach_stack"] == '[["a", "x", 4, 3]]' and row["run_id"] == run_pk
