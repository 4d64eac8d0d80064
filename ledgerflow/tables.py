"""Every table of the ledger, its columns declared once: the shape a fresh ledger has after
all of `schema.py`'s migrations (tests/test_tables.py holds each declaration against
`pragma table_info` of a new file). The writers' inserts (`writes.py`), the reads' column
lists (`reads.py`), export/import (`sharing.py`) and the SQL-owner guard take their columns
from here; the migrations (`schema.py`, beside this file) make the tables. Declarations only:
no I/O, cheap to import.

Adding a column: declare it here, and add the migration that adds it to older files (a
new entry at the end of `schema.MIGRATIONS`; `add_declared_column` does it from the
declaration). Inserts, reads and export/import then carry it. A nullable column that no
record has a field for yet is written NULL, as the migration leaves older rows; the code
that gives it a value adds that field (`records.TaskRecord` for a task column).

Ids. Stored column names are the public contract (README documents them, and the views
keep them), so the ambiguous ones stay; in Python they go by names that say which:

- `run.run_id` is the Metaflow run id (text, 'Flow/<run_id>'); `run.id` is the run pk. In
  `task`, `tag`, `s3_object` and `imported_run`, `run_id` is that run pk (`run_pk` in code).
- `task.task_id` is the Metaflow task id (text); `task.id` is the task pk. In `artifact`,
  `log`, `card` and `task_parent`, `task_id` is that task pk (`task_pk` in code).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .structs import struct


@struct(frozen=True)
class Column:
    """One column as `pragma table_info` reports it, and how code names and encodes it."""

    name: str
    type: str = "TEXT"  # TEXT | INTEGER | BLOB | "" (no affinity)
    notnull: bool = False
    pk: int = 0  # position in the primary key (1-based), 0 if not part of it
    default: str | None = None  # the SQL default text, as table_info shows it
    attr: str = ""  # the Python name, where the stored one is ambiguous (run_id -> run_pk)
    json: bool = False  # stored as JSON text (encoded by `values`)
    start: bool = False  # task: written when the attempt starts, never changed after
    listed: bool = True  # read in every lookup (False: large text read on its own)

    @property
    def key(self) -> str:
        return self.attr or self.name


def _col(name: str, type: str = "TEXT", notnull: bool = True, **kw: Any) -> Column:
    return Column(name, type, notnull, **kw)


def _opt(name: str, type: str = "TEXT", **kw: Any) -> Column:
    return Column(name, type, False, **kw)


_ID = Column("id", "INTEGER", True, pk=1)


class Table:
    """A table's name and columns, in their stored order."""

    def __init__(self, name: str, *columns: Column):
        self.name = name
        self.columns = columns
        self.by_name = {c.name: c for c in columns}
        # task: the columns an insert writes, and those a finished attempt updates.
        self.written = tuple(c.name for c in columns if c.name != "id")
        self.outcome = tuple(c.name for c in columns if not c.start and c.name != "id")
        self._encoders: dict[tuple[str, ...], list[tuple[str, bool, bool]]] = {}

    def names(self, exclude: Iterable[str] = ("id",)) -> tuple[str, ...]:
        skip = set(exclude)
        return tuple(c.name for c in self.columns if c.name not in skip)

    def values(self, record: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
        """The stored values of `names`, read from a record's attributes (JSON encoded); a
        nullable column the record has no attribute for is NULL, a NOT NULL one an error."""
        plan = self._encoders.get(names)
        if plan is None:
            plan = self._encoders[names] = [
                (self.by_name[n].key, self.by_name[n].json, self.by_name[n].notnull) for n in names
            ]
        out = []
        for key, as_json, required in plan:
            value = getattr(record, key) if required else getattr(record, key, None)
            out.append(json.dumps(value) if as_json and value is not None else value)
        return tuple(out)


def insert_sql(table: Table, names: Iterable[str], verb: str = "") -> str:
    """`insert [verb] into table(names) values (?, ...)`."""
    names = tuple(names)
    return (f"insert {verb + ' ' if verb else ''}into {table.name}({', '.join(names)})"
            f" values ({', '.join('?' * len(names))})")  # fmt: skip


META = Table("meta", _col("key", pk=1), _col("value"))  # ledger_id, created_at, created_on, ...
FLOW = Table("flow", _ID, _col("name"), _col("created_at"))
RUN = Table(
    "run", _ID,
    _col("flow_id", "INTEGER"),
    _col("run_id"),  # the Metaflow run id: time-ordered digits with a random tail
    _col("status"),  # running | succeeded | failed | crashed
    _col("created_at"), _opt("finished_at"),
    _col("params"),  # JSON object: parameter name -> value (or its repr)
    _opt("user"), _opt("host"), _opt("pid", "INTEGER"), _opt("heartbeat_at"),
    _opt("script_name"), _opt("code"),  # the flow file's source at run time
    _opt("origin_run_id"),  # set by resume
    _opt("python_version"), _opt("ledgerflow_version"),
    _opt("machine_id"),  # the machine (its ledgerflow machine id) that ran it
    _opt("graph_info"),  # JSON: the flow's graph (the `_graph_info` artifact)
)  # fmt: skip
TASK = Table(
    "task", _ID,  # one attempt of one task; the Client API shows the highest
    _col("run_id", "INTEGER", attr="run_pk", start=True),
    _col("step", start=True),
    _col("task_id", start=True),  # the Metaflow task id
    _col("attempt", "INTEGER", start=True),
    _col("status"),  # running | succeeded | failed | caught | crashed | interrupted
    _col("started_at", start=True), _opt("finished_at"),
    _opt("foreach_index", "INTEGER", start=True),
    _col("foreach_stack", json=True, start=True),  # JSON [[step, var, num_splits, index]]
    _opt("exception_type"),  # e.g. 'builtins.ValueError'
    _opt("exception"),  # str(exception)
    _opt("traceback", listed=False),
    _opt("origin_pathspec"),  # the task a resume cloned this one from
    _opt("transition", json=True),  # what self.next() did; NULL if failed or the end step
    _opt("host"),  # the machine it ran on, if not the run's (a Dask worker)
)  # fmt: skip
TASK_PARENT = Table(  # lineage: which tasks fed which
    "task_parent",
    _col("task_id", "INTEGER", pk=1, attr="task_pk"), _col("parent_id", "INTEGER", pk=2),
)  # fmt: skip
BLOB = Table(  # a stored value, once per SHA-256 of its raw encoding; data in blob_chunk
    "blob", _col("sha", pk=1), _col("codec"), _col("encoding"),
    _col("raw_size", "INTEGER"), _col("stored_size", "INTEGER"), _col("chunk_size", "INTEGER"),
    _col("n_chunks", "INTEGER"), _opt("python_version"), _col("created_at"),
    _col("preview"),  # a bounded text preview of the value (preview.py)
)  # fmt: skip
BLOB_CHUNK = Table("blob_chunk", _ID, _col("sha"), _col("seq", "INTEGER"), _col("data", "BLOB"))
ARTIFACT = Table(
    "artifact", _ID, _col("task_id", "INTEGER", attr="task_pk"), _col("name"), _col("sha"),
    _col("encoding"), _col("type"), _col("size", "INTEGER"),
    _opt("value", ""),  # the value itself when a number, bool or short string
    _col("inherited", "INTEGER"),  # 1: passed on unchanged from a parent
)  # fmt: skip
TAG = Table("tag", _ID, _col("run_id", "INTEGER", attr="run_pk"), _col("tag"),
            _col("system", "INTEGER"))  # fmt: skip
LOG = Table("log", _ID, _col("task_id", "INTEGER", attr="task_pk"), _col("stream"), _col("text"))
S3_OBJECT = Table(  # an object stored through `S3(run=...)`: a key scoped to a run
    "s3_object", _ID, _col("run_id", "INTEGER", attr="run_pk"), _col("key"), _col("sha"),
    _col("encoding"), _col("size", "INTEGER"), _col("created_at"),
)  # fmt: skip
CARD = Table(  # one row per card a task attempt rendered; the HTML is a blob
    "card", _ID, _col("task_id", "INTEGER", attr="task_pk"), _col("seq", "INTEGER"),
    _col("type"), _opt("card_id"), _opt("sha"), _opt("error"),
)  # fmt: skip
IMPORTED_RUN = Table(  # runs `import`/`export` copied in, and whether trusted where they were
    "imported_run", _opt("run_id", "INTEGER", pk=1, attr="run_pk"), _opt("source_ledger_id"),
    _opt("imported_at"), _col("trusted", "INTEGER", default="0"),
)  # fmt: skip

LOG_PIECE = Table(  # a task's log in pieces (logstore.py): ~128 KB of a stream's text each
    "log_piece", Column("id", "INTEGER", False, pk=1), _col("task_id", "INTEGER", attr="task_pk"),
    _col("stream"),
    _col("byte_start", "INTEGER"), _col("line_start", "INTEGER"), _col("bytes", "INTEGER"),
    _col("newlines", "INTEGER"), _col("codec"), _col("data", "BLOB"),
)  # fmt: skip
TASK_KEY = Table(  # `run --reuse` (taskreuse.py): a task's key and the digests it was made of
    "task_key", _opt("task_pk", "INTEGER", pk=1), _col("key"), _col("code"), _col("inputs"),
    _col("env"),
)  # fmt: skip
STEP_CODE = Table(  # a step's code fingerprint in a run, with its parts (JSON) for `explain`
    "step_code", _col("run_pk", "INTEGER", pk=1), _col("step", pk=2), _col("code"),
    _col("parts"),
)  # fmt: skip

TABLES = {t.name: t for t in (META, FLOW, RUN, TASK, TASK_PARENT, BLOB, BLOB_CHUNK, ARTIFACT,
                              TAG, LOG, S3_OBJECT, CARD, IMPORTED_RUN, LOG_PIECE, TASK_KEY,
                              STEP_CODE)}  # fmt: skip
# The full-text indexes (FTS5 virtual tables, see search_index.py) and their shadow tables.
FTS_TABLES = ("artifact_fts", "task_fts")
FTS_SHADOWS = tuple(f"{fts}_{part}" for fts in FTS_TABLES
                    for part in ("data", "idx", "content", "docsize", "config"))  # fmt: skip
# The logs' index is contentless (logstore.py: no second copy of the text): no _content.
LOG_FTS_TABLES = ("log_fts", *(f"log_fts_{part}" for part in ("data", "idx", "docsize", "config")))
