"""The full-text indexes' whole life: their tables, filling them as tasks are written,
dropping a run's rows, rebuilding and checking them. fulltext.py reads them (search).

`artifact_fts` holds each produced artifact's name, flow, step and a bounded text preview
of its value (never a suspected credential: secrets_check.index_text), its rowid the
artifact's id. `task_fts` holds each task attempt's exception, its rowid `task id * 4 + 2`
(TEXT_KINDS: until migration 8 it held stdout and stderr too, as + 0 and + 1, and does in
files from before it), so a task's rows are found without a scan. Logs are indexed in
`log_fts`, one contentless row per stored piece of a log (logstore.py: no second copy).

Why no triggers keep them in step (as sqlite-utils' enable_fts does): ledgerflow opens
files with `trusted_schema=OFF` (a ledger may come from someone else), and SQLite then
refuses to let a trigger write to an FTS5 table ("unsafe use of virtual table"). So the
writer fills them in the transaction that writes a task (`index_artifacts`,
`index_task_text`), `rm` drops a run's rows (`forget_run`: deletes do not cascade into a
virtual table), and `doctor --repair` and migrations rebuild them (`rebuild`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from .logstore import drop_pieces
from .logstore import rebuild_index as rebuild_log_index
from .secrets_check import index_text

TEXT_KINDS = {"stdout": 0, "stderr": 1, "exception": 2}


def searchable(name: str, inherited: bool) -> bool:
    """Whether an artifact row goes into the search index: produced by its task, not internal."""
    return not inherited and not name.startswith("_")


# The same rule in SQL, for rebuilding or checking the index (alias `a` for artifact).
SEARCHABLE_SQL = "a.inherited = 0 and substr(a.name, 1, 1) != '_'"


# -- artifacts ----------------------------------------------------------------------------


def index_artifacts(
    conn: sqlite3.Connection, rows: Iterable[tuple[int, str, bool, str, str, str]]
) -> None:
    """Index produced artifacts: (artifact id, name, inherited, flow, step, preview) rows;
    inherited and internal ones are skipped (searchable)."""
    conn.executemany(
        "insert into artifact_fts(rowid, name, flow, step, preview) values (?, ?, ?, ?, ?)",
        [(pk, name, flow, step, index_text(name, preview or ""))
         for pk, name, inherited, flow, step, preview in rows
         if searchable(name, inherited)],
    )  # fmt: skip


def rebuild_artifact_index(conn: sqlite3.Connection) -> None:
    conn.execute("delete from artifact_fts")
    rows = conn.execute(
        "select a.id, a.name, f.name, t.step, b.preview from artifact a "
        "join blob b on b.sha = a.sha join task t on t.id = a.task_id "
        f"join run r on r.id = t.run_id join flow f on f.id = r.flow_id where {SEARCHABLE_SQL}"
    )
    conn.executemany(
        "insert into artifact_fts(rowid, name, flow, step, preview) values (?, ?, ?, ?, ?)",
        ((i, n, f, st, index_text(n, p or "")) for i, n, f, st, p in rows.fetchall()),
    )


def artifact_index_problems(conn: sqlite3.Connection) -> list[str]:
    """What doctor reports about artifact_fts: entries missing or left over."""
    problems = []
    indexed = conn.execute("select count(*) from artifact_fts").fetchone()[0]
    expected = conn.execute(f"select count(*) from artifact a where {SEARCHABLE_SQL}").fetchone()[0]
    if indexed != expected:
        problems.append(f"search index has {indexed} entries for {expected} searchable artifacts")
    orphans = conn.execute(
        "select count(*) from artifact_fts where rowid not in (select id from artifact)"
    ).fetchone()[0]
    if orphans:
        problems.append(f"search index has {orphans} entries for deleted artifacts")
    return problems


# -- both -----------------------------------------------------------------------------------


def forget_run(conn: sqlite3.Connection, run_pk: int) -> None:
    """Drop a run's rows from both indexes, before the run itself is deleted."""
    conn.execute(
        "delete from artifact_fts where rowid in (select a.id from artifact a "
        "join task t on t.id = a.task_id where t.run_id = ?)",
        (run_pk,),
    )
    forget_run_text(conn, run_pk)


def rebuild(conn: sqlite3.Connection) -> dict[str, int]:
    """Every index anew from what the ledger holds (doctor --repair); what each holds now."""
    rebuild_artifact_index(conn)
    conn.execute("delete from task_fts")
    return {
        "artifacts": int(conn.execute("select count(*) from artifact_fts").fetchone()[0]),
        "exceptions": index_exceptions(conn),
        "log_pieces": rebuild_log_index(conn),
    }


# -- task logs and exceptions -------------------------------------------------------------


TASK_FTS_DDL = "create virtual table task_fts using fts5(text, tokenize = 'unicode61')"
# Prefix indexes for 2- to 8-character prefixes: FTS5 answers `resnet5*` by merging the
# whole doclist of every word starting with it (a search for `resnet5*`: 21 ms of CPU at
# 100k runs, growing with the ledger) unless it indexes prefixes of that exact length, when the query reads one
# doclist lazily like a plain word (that search: 8.5 ms). Longer prefixes match few words: cheap anyway.
# The cost: the artifact index grows from 42 to ~190 MB at 1M artifacts (about 16% of the
# ledger). Logs (task_fts) keep no prefix index: their text is much larger.
PREFIX_LENGTHS = "2 3 4 5 6 7 8"
ARTIFACT_FTS_DDL = (
    "create virtual table artifact_fts using fts5("
    f"name, flow, step, preview, tokenize = 'unicode61', prefix = '{PREFIX_LENGTHS}')"
)


def index_task_text(conn: sqlite3.Connection, task_pk: int) -> None:
    """Index a task attempt's exception. Called by the writer in the transaction that writes
    the task. (Its logs are indexed piece by piece as they are written: logstore.py.)"""
    failed = conn.execute(
        "select exception_type, exception from task where id = ? and exception_type is not null",
        (task_pk,),
    ).fetchone()
    if failed is not None:
        conn.execute(
            "insert or replace into task_fts(rowid, text) values (?, ?)",
            (task_pk * 4 + TEXT_KINDS["exception"], f"{failed[0]}: {failed[1] or ''}"),
        )


def index_exceptions(conn: sqlite3.Connection) -> int:
    """Every task's exception into task_fts (rebuilds, migrations); returns how many."""
    rows = [(pk * 4 + TEXT_KINDS["exception"], f"{etype}: {message or ''}")
            for pk, etype, message in conn.execute(
                "select id, exception_type, exception from task "
                "where exception_type is not null")]  # fmt: skip
    conn.executemany("insert or replace into task_fts(rowid, text) values (?, ?)", rows)
    return len(rows)


def forget_run_text(conn: sqlite3.Connection, run_pk: int) -> None:
    """Drop a run's rows from task_fts and log_fts (virtual tables: deletes do not cascade
    into them)."""
    conn.execute(
        "delete from task_fts where rowid in (select t.id * 4 + k.code from task t, "
        "(select 0 as code union all select 1 union all select 2) k where t.run_id = ?)",
        (run_pk,),
    )
    drop_pieces(conn, "join task t on t.id = p.task_id where t.run_id = ?", (run_pk,))


def add_prefix_indexes(conn: sqlite3.Connection) -> None:
    """Rebuild artifact_fts with prefix indexes (an FTS5 table's options cannot be altered):
    a new table filled from the old one's stored columns, then the old one dropped. An empty
    one (a new ledger) is dropped and made anew: renaming a virtual table renames each of its
    shadow tables, 16 of a new ledger's 36 ms."""
    if not conn.execute("select 1 from artifact_fts limit 1").fetchone():
        conn.execute("drop table artifact_fts")
        conn.execute(ARTIFACT_FTS_DDL)
        return
    conn.execute("alter table artifact_fts rename to artifact_fts_unprefixed")
    conn.execute(ARTIFACT_FTS_DDL)
    conn.execute(
        "insert into artifact_fts(rowid, name, flow, step, preview) "
        "select rowid, name, flow, step, preview from artifact_fts_unprefixed"
    )
    conn.execute("drop table artifact_fts_unprefixed")


def rebuild_task_index(conn: sqlite3.Connection) -> int:
    """task_fts anew from every task's exception, and log_fts from every log piece (where the
    ledger has them: migration 4 runs this on files from before them); returns the rows
    indexed."""
    conn.execute("delete from task_fts")
    return index_exceptions(conn) + rebuild_log_index(conn)


def task_index_counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(rows in task_fts, rows it should have: one per task exception): doctor's check that
    the index is whole. log_fts is checked by logstore.index_problems."""
    indexed = conn.execute("select count(*) from task_fts").fetchone()[0]
    expected = conn.execute(
        "select count(*) from task where exception_type is not null"
    ).fetchone()[0]
    return int(indexed), int(expected)
