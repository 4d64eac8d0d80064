"""Ordered schema migrations and the documented SQL views.

`PRAGMA user_version` holds the number of migrations applied. `Ledger` runs the missing
ones inside one `BEGIN IMMEDIATE` transaction, so processes creating the same new file at
the same moment serialize: the first creates the schema, the others find it done.

A migration is a small function `(conn)`. Never edit one that has shipped; add the next.
Migration 1 runs the frozen version-1 DDL (`ddl_v1.py`); the ones after it add what came
since. The shape they build together is declared in `tables.py` (tests/test_tables.py
holds a fresh ledger against it): a new column is one declaration there plus a migration
here (`add_declared_column`), idempotent as the others are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .logstore import store_logs_in_pieces
from .search_index import TASK_FTS_DDL, add_prefix_indexes, index_exceptions, rebuild_task_index
from .tables import FTS_SHADOWS, FTS_TABLES, LOG_FTS_TABLES, TABLES, Table

# Views are the public contract: README.md documents each column, and
# tests/test_views.py fails if a documented column disappears.
VIEWS_V1 = {
    "runs": """
        create view runs as
        select f.name as flow,
               r.run_id as run_id,
               r.status as status,
               r.created_at as created_at,
               r.finished_at as finished_at,
               round((julianday(r.finished_at) - julianday(r.created_at)) * 86400.0, 3)
                   as duration_s,
               r.user as user,
               -- A JSON array, built by hand: json_group_array() is refused under
               -- trusted_schema=OFF, which ledgerflow sets for files from others.
               '[' || coalesce((select group_concat(
                   '"' || replace(replace(t.tag, '\\', '\\\\'), '"', '\\"') || '"', ',')
                   from (select tag from tag where tag.run_id = r.id order by tag) t), '')
                   || ']' as tags,
               r.params as params,
               r.host as host,
               r.origin_run_id as origin_run_id,
               f.name || '/' || r.run_id as pathspec
        from run r join flow f on f.id = r.flow_id
    """,
    "tasks": """
        create view tasks as
        select f.name as flow,
               r.run_id as run_id,
               t.step as step,
               t.task_id as task_id,
               f.name || '/' || r.run_id || '/' || t.step || '/' || t.task_id as pathspec,
               t.status as status,
               t.attempt as attempt,
               t.foreach_index as foreach_index,
               t.started_at as started_at,
               t.finished_at as finished_at,
               round((julianday(t.finished_at) - julianday(t.started_at)) * 86400.0, 3)
                   as duration_s,
               t.exception_type as exception_type,
               t.exception as exception
        from task t join run r on r.id = t.run_id join flow f on f.id = r.flow_id
    """,
    # `artifacts` lists what each task produced; `all_artifacts` adds the ones a task
    # passed on unchanged from its parents (what task.data shows).
    "all_artifacts": """
        create view all_artifacts as
        select f.name as flow,
               r.run_id as run_id,
               t.step as step,
               t.task_id as task_id,
               a.name as name,
               a.value as value,
               a.type as type,
               a.size as size,
               a.sha as sha,
               a.encoding as encoding,
               t.finished_at as created_at,
               f.name || '/' || r.run_id || '/' || t.step || '/' || t.task_id || '/' || a.name
                   as pathspec,
               b.preview as preview,
               t.attempt as attempt,
               a.inherited as inherited
        from artifact a join task t on t.id = a.task_id
             join run r on r.id = t.run_id join flow f on f.id = r.flow_id
             join blob b on b.sha = a.sha
    """,
    "artifacts": """
        create view artifacts as
        select * from all_artifacts where inherited = 0
    """,
}


def _v1_schema(conn: sqlite3.Connection) -> None:
    """Tables and indexes (the frozen version-1 DDL of ddl_v1.py), the
    documented views, and the full-text index."""
    from .ddl_v1 import TABLES_V1

    for sql in TABLES_V1:
        conn.execute(sql)
    for sql in VIEWS_V1.values():
        conn.execute(sql)
    # Full-text index over the artifacts tasks produce (not the ones passed on unchanged):
    # name, flow, step and the value's text preview. Its rowid is the artifact's id; the
    # writer fills it in the transaction that writes the task.
    conn.execute(
        "create virtual table artifact_fts using fts5("
        "name, flow, step, preview, tokenize = 'unicode61')"
    )


def index_runs_by_created_at(conn: sqlite3.Connection) -> None:
    """Newest-first run lists, over every flow or of one status (`ledgerflow ui`), read one
    index range: on 100k runs a page of failed runs took 70 ms sorting them all, 0.3 ms."""
    conn.execute("create index if not exists run_created_at on run(created_at)")
    conn.execute("create index if not exists run_status_created_at on run(status, created_at)")


def _index_task_logs_and_exceptions(conn: sqlite3.Connection) -> None:
    """Full-text index over task logs and exception text (`search --kind log|exception`),
    filled from what the ledger already holds."""
    conn.execute(TASK_FTS_DDL)
    rebuild_task_index(conn)


def add_declared_column(conn: sqlite3.Connection, table: Table, name: str) -> None:
    """`alter table add column` as `tables.py` declares it, unless the column is there."""
    column = table.by_name[name]
    if name in {row[1] for row in conn.execute(f"pragma table_info({table.name})")}:
        return
    sql = f"alter table {table.name} add column {name} {column.type.lower()}".rstrip()
    if column.notnull:  # SQLite needs a default to add a NOT NULL column
        sql += f" not null default {column.default}"
    elif column.default is not None:
        sql += f" default {column.default}"
    conn.execute(sql)


def add_task_host(conn: sqlite3.Connection) -> None:
    """The machine a task ran on, where it is not the run's (a Dask worker); NULL for tasks
    that ran on the run's own machine."""
    add_declared_column(conn, TABLES["task"], "host")


def add_card_table(conn: sqlite3.Connection) -> None:
    """The `card` table. Rows go with their task (ON DELETE CASCADE); `sha` references the
    HTML blob, indexed so gc and doctor check references cheaply."""
    conn.execute(
        "create table if not exists card ("
        "id integer not null primary key, "
        "task_id integer not null references task(id) on delete cascade, "
        "seq integer not null, "
        "type text not null, "
        "card_id text, "
        "sha text references blob(sha), "
        "error text)"
    )
    conn.execute("create unique index if not exists card_task_id_seq on card(task_id, seq)")
    conn.execute("create index if not exists card_sha on card(sha)")


def _imported_runs_table(conn: sqlite3.Connection) -> None:
    """Runs that `import`/`export` copied in from another ledger. `trusted` = 0 when the
    user had not trusted them there: their pickles need trust even inside the user's own
    ledger (see trust_store.py). A copied run is never live (see liveness.py)."""
    conn.execute(
        "create table if not exists imported_run (run_id integer primary key "
        "references run(id) on delete cascade, source_ledger_id text, imported_at text, "
        "trusted integer not null default 0)"
    )


def index_search_prefixes(conn: sqlite3.Connection) -> None:
    """Prefix searches (`resnet5*`) read one doclist instead of merging every matching
    word's (5 ms for the merge alone at 100k runs, growing), now 0.2 ms (see
    search_index.PREFIX_LENGTHS). On a ledger of 1M artifacts the rebuild takes ~18 s, once."""
    add_prefix_indexes(conn)


def add_reuse_keys(conn: sqlite3.Connection) -> None:
    """`run --reuse` (taskreuse.py): each task's key and what it was made of, and each run's
    step code fingerprints with their parts (`ledgerflow explain` shows them)."""
    conn.execute(
        "create table if not exists task_key (task_pk integer primary key references task(id)"
        " on delete cascade, key text not null, code text not null, inputs text not null,"
        " env text not null)"
    )
    conn.execute("create index if not exists task_key_key on task_key(key)")
    conn.execute(
        "create table if not exists step_code (run_pk integer not null references run(id)"
        " on delete cascade, step text not null, code text not null, parts text not null,"
        " primary key (run_pk, step))"
    )


def _store_logs_in_pieces(conn: sqlite3.Connection) -> None:
    """Logs move into compressed pieces indexed by the contentless log_fts (logstore.py);
    task_fts keeps exceptions only (its second copy of every log goes)."""
    store_logs_in_pieces(conn)
    conn.execute("drop table if exists task_fts")
    conn.execute(TASK_FTS_DDL)
    index_exceptions(conn)


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = [
    _v1_schema,
    add_card_table,
    index_runs_by_created_at,
    _index_task_logs_and_exceptions,
    _imported_runs_table,
    index_search_prefixes,
    add_task_host,
    _store_logs_in_pieces,
    add_reuse_keys,
]
SCHEMA_VERSION = len(MIGRATIONS)

# Names in a ledger file; anything else at version 0 means the file is someone else's.
OUR_TABLES = [*TABLES, *VIEWS_V1, "sqlite_sequence", *FTS_TABLES, *FTS_SHADOWS, *LOG_FTS_TABLES]
