"""The write statements of the ledger, the mirror of `reads.py`: small functions over a
connection, each run inside the one transaction policy below, plus the few entry points
that the runtime, `resume` and the task processes call with the open ledger.

The transaction policy (`transaction`): a write is one `BEGIN IMMEDIATE` transaction, taken
up front so that SQLite's busy timeout applies (a deferred transaction that upgrades later
fails with SQLITE_BUSY at once), retried while another writer holds the lock, rolled back
whole on any error (a full disk leaves nothing half-written), and committed without copying
its pages into the file itself when it added many blob bytes (the checkpointer does that in
the background, see checkpointer.py). Writes never nest: one writer, one transaction a batch.

Who writes what: runs, tasks, their logs, artifacts and cards, tags at run start, crash
marking and `meta` are here; blobs are `blobstore.py`'s (`put` inside a transaction of
this module), the full-text index `search_index.py`'s (called from here, in the same
transaction), rm/gc/doctor `upkeep.py`'s and export/import `sharing.py`'s (whole-file
operations, each one transaction through `Ledger.write`). Columns come from `tables.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from . import logstore
from .checkpointer import wal_is_large
from .clock import now_iso
from .connections import BUSY_TIMEOUT_MS, _jitter
from .exceptions import LedgerError, LedgerReadOnlyError
from .liveness import hostname
from .provenance import machine_id
from .records import CardRecord, TaskRecord
from .search_index import index_artifacts, index_task_text, searchable
from .tables import (
    ARTIFACT,
    CARD,
    RUN,
    S3_OBJECT,
    STEP_CODE,
    TAG,
    TASK,
    TASK_KEY,
    TASK_PARENT,
    insert_sql,
)  # fmt: skip

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from . import codec
    from .blobstore import BlobStore


def _as_is(value: Any) -> Any:
    return value


# Python's sqlite3 binds an exact int, float or str directly, but looks up an adapter for any
# other value, None and bytes among them, and when it finds none asks the PrepareProtocol
# type for `__adapt__`, which builds and discards an AttributeError: about 0.5 us a value,
# ~30 values a task on the run's path. With an adapter registered (one that returns the value
# itself, or `int` for a bool: what sqlite3 binds anyway) it finds one at once. The registry
# is the process's: one registered before ours (by the user's code) is left as it is.
for _type, _adapter in ((type(None), _as_is), (bytes, _as_is), (bool, int)):
    sqlite3.adapters.setdefault((_type, sqlite3.PrepareProtocol), _adapter)

WRITE_RETRIES = 5
WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
# Commits adding more blob bytes than this leave their checkpoint to a background thread.
BACKGROUND_CHECKPOINT_BYTES = 8 << 20


class Writable(Protocol):
    """What the entry points need of an open ledger (`ledger.Ledger`)."""

    blobs: BlobStore

    def write(self) -> AbstractContextManager[sqlite3.Connection]: ...


# -- the transaction policy -------------------------------------------------------------------


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, path: Path, blobs: BlobStore,
                request_checkpoint: Any) -> Iterator[sqlite3.Connection]:  # fmt: skip
    """A `BEGIN IMMEDIATE` transaction on `conn`, retried while another writer holds the
    lock; `request_checkpoint()` is called after a commit that added many blob bytes."""
    blobs.reset_pending()
    if conn.in_transaction:
        # Left open by a write interrupted (Ctrl-C) between its BEGIN and its body;
        # writes never nest, so nothing of it can be meant to last.
        conn.execute("ROLLBACK")
    for attempt in range(WRITE_RETRIES + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or attempt == WRITE_RETRIES:
                raise LedgerError(
                    f"cannot write to {path}: {e}; another process has held its "
                    f"write lock for over {BUSY_TIMEOUT_MS // 1000}s"
                ) from None
            time.sleep(_jitter(0.05, 0.2) * (attempt + 1))
    try:
        yield conn
    except sqlite3.OperationalError as e:  # e.g. disk full: nothing half-written
        _rollback(conn)
        raise write_error(path, e) from None
    except BaseException:
        _rollback(conn)
        raise
    # Neither a commit adding many blob bytes nor one meeting a WAL that another process (a
    # task storing its big values) filled copies those pages into the file itself.
    big = blobs.pending_bytes() >= BACKGROUND_CHECKPOINT_BYTES or wal_is_large(path)
    if big:  # this commit must not copy its pages into the file itself
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as e:
        _rollback(conn)
        raise write_error(path, e) from None
    finally:
        if big:
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    if big:
        request_checkpoint()


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def write_error(path: Path, error: sqlite3.Error) -> LedgerError:
    """The one line a failed write says."""
    text = str(error)
    if "full" in text:
        return LedgerError(f"the disk holding {path} is full; nothing was half-written. Free "
                           "some space, then `resume` the run")  # fmt: skip
    if "readonly" in text or "read-only" in text:
        return LedgerReadOnlyError(f"{path} cannot be written (read-only file or folder)")
    return LedgerError(f"cannot write to {path}: {text}")


# -- statements (inside a transaction) --------------------------------------------------------


def init_meta(conn: sqlite3.Connection) -> None:
    """A new ledger's facts: its id, when and where it was created."""
    import uuid

    rows = [("ledger_id", uuid.uuid4().hex), ("created_at", now_iso()),
            ("created_on", hostname())]  # fmt: skip
    conn.executemany("insert or ignore into meta(key, value) values (?, ?)", rows)


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("insert or replace into meta(key, value) values (?, ?)", (key, value))


def flow_pk(conn: sqlite3.Connection, name: str) -> int:
    """The flow's id, inserting it the first time."""
    conn.execute("insert or ignore into flow(name, created_at) values (?, ?)", (name, now_iso()))
    return int(conn.execute("select id from flow where name = ?", (name,)).fetchone()[0])


def insert_run(conn: sqlite3.Connection, values: dict[str, Any]) -> int:
    """A run row from its column values (tables.RUN); returns its id (the run pk)."""
    names = [c.name for c in RUN.columns if c.name in values]
    cur = conn.execute(insert_sql(RUN, names), [values[n] for n in names])
    return cast(int, cur.lastrowid)  # set by the insert just made


def add_tags(conn: sqlite3.Connection, run_pk: int, tags: Iterable[str],
             system_tags: Iterable[str] = ()) -> None:  # fmt: skip
    conn.executemany(
        insert_sql(TAG, ("run_id", "tag", "system"), "or ignore"),
        [(run_pk, t, 0) for t in tags] + [(run_pk, t, 1) for t in system_tags],
    )


def set_heartbeat(conn: sqlite3.Connection, run_pk: int) -> None:
    conn.execute("update run set heartbeat_at = ? where id = ?", (now_iso(), run_pk))


def end_runs(conn: sqlite3.Connection, run_pks: list[int], status: str,
             only_running: bool = False) -> None:  # fmt: skip
    """Runs end with `status`; a task they could not see end (its process vanished with the
    writer's ability to record it) ends with them, as crashed."""
    now = now_iso()
    guard = " and status = 'running'" if only_running else ""
    conn.executemany(f"update run set status = ?, finished_at = ? where id = ?{guard}",
                     [(status, now, pk) for pk in run_pks])  # fmt: skip
    conn.executemany(
        "update task set status = 'crashed', finished_at = ? where run_id = ?"
        " and status = 'running'",
        [(now, pk) for pk in run_pks],
    )


def next_artifact_id(conn: sqlite3.Connection) -> int:
    # Explicit ids let the search index share them; we hold the write lock.
    return int(conn.execute("select coalesce(max(id), 0) + 1 from artifact").fetchone()[0])


def run_flow_name(conn: sqlite3.Connection, run_pk: int) -> str:
    return str(conn.execute("select f.name from run r join flow f on f.id = r.flow_id "
                            "where r.id = ?", (run_pk,)).fetchone()[0])  # fmt: skip


def _values_getter(table: Any, names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """`table.values(record, names)` made for one tuple of names: every attribute read in
    one call (a task's row is written twice, and this is on the run's path)."""
    get = attrgetter(*(table.by_name[n].key for n in names))
    as_json = [i for i, n in enumerate(names) if table.by_name[n].json]

    def values(record: Any) -> tuple[Any, ...]:
        try:
            row = get(record)
        except AttributeError:  # (not a TaskRecord: the general rule says what is missing)
            return cast("tuple[Any, ...]", table.values(record, names))
        if not as_json:
            return cast("tuple[Any, ...]", row)
        encoded = list(row)
        for i in as_json:
            if encoded[i] is not None:
                encoded[i] = json.dumps(encoded[i])
        return tuple(encoded)

    return values


_INSERT_TASK = insert_sql(TASK, ("id", *TASK.written))
_FINISH_TASK = (f"update task set {', '.join(f'{c} = ?' for c in TASK.outcome)}"
                " where id = ?")  # fmt: skip
_written = _values_getter(TASK, TASK.written)
_outcome = _values_getter(TASK, TASK.outcome)
_INSERT_PARENT = insert_sql(TASK_PARENT, ("task_id", "parent_id"), "or ignore")
_INSERT_ARTIFACT = insert_sql(ARTIFACT, ARTIFACT.names(exclude=()))
# An ArtifactRecord's values for _INSERT_ARTIFACT's columns after (id, task_id), in one call
_artifact_columns = attrgetter("name", "sha", "encoding", "type", "size", "value", "inherited")


def insert_tasks(conn: sqlite3.Connection, records: list[TaskRecord],
                 flow_of: Callable[[TaskRecord], str]) -> list[int]:  # fmt: skip
    """Task attempts' rows (started, or finished in one go), their parents, logs, artifacts
    and cards, a statement a table for them all; returns their ids (task pks), in order.
    The ids are chosen here, as SQLite would (one past the largest: `id` is the rowid and
    the table has no AUTOINCREMENT), since the transaction holds the write lock."""
    if not records:
        return []
    first = int(conn.execute("select coalesce(max(id), 0) + 1 from task").fetchone()[0])
    pks = list(range(first, first + len(records)))
    conn.executemany(_INSERT_TASK, [(pk, *_written(rec)) for pk, rec in zip(pks, records)])
    parents = [(pk, p) for pk, rec in zip(pks, records) for p in rec.parent_pks]
    if parents:
        conn.executemany(_INSERT_PARENT, parents)
    logstore.start_logs(conn, [(pk, rec.stdout, rec.stderr) for pk, rec in zip(pks, records)])
    insert_artifacts(conn, list(zip(pks, records)), flow_of)
    _index_exceptions(conn, list(zip(pks, records)))
    return pks


def finish_tasks(conn: sqlite3.Connection, records: list[TaskRecord],
                 flow_of: Callable[[TaskRecord], str]) -> None:  # fmt: skip
    """Started task rows get their outcome (their start time stays the one the runtime
    wrote when it launched them), all in a few statements; their output so far is already
    in `log`."""
    if not records:  # (a commit of starting tasks' rows alone: no statement to prepare)
        return
    conn.executemany(_FINISH_TASK, [(*_outcome(rec), rec.pk) for rec in records])
    append_logs(conn, [(cast(int, rec.pk), stream, text) for rec in records
                       for stream, text in (("stdout", rec.stdout), ("stderr", rec.stderr))
                       if text])  # fmt: skip
    finished = [(cast(int, rec.pk), rec) for rec in records]
    insert_artifacts(conn, finished, flow_of)
    _index_exceptions(conn, finished)


def _index_exceptions(conn: sqlite3.Connection, tasks: list[tuple[int, TaskRecord]]) -> None:
    """The exceptions of failed task attempts (task pk, record), for search --kind exception."""
    for task_pk, rec in tasks:
        if rec.exception_type is not None:
            index_task_text(conn, task_pk)


def append_logs(conn: sqlite3.Connection, chunks: list[tuple[int, str, str]]) -> None:
    """Output of running tasks: (task pk, stream, text) appended to their logs, as compressed
    pieces indexed as they are written (logstore.py)."""
    logstore.append_logs(conn, chunks)


def insert_artifacts(conn: sqlite3.Connection, tasks: list[tuple[int, TaskRecord]],
                     flow_of: Callable[[TaskRecord], str]) -> None:  # fmt: skip
    """Task attempts' (task pk, record) artifact and card rows (their blobs are stored by
    then), indexed for search in the same transaction: one statement a table for them all."""
    for task_pk, rec in tasks:
        if rec.cards:
            write_card_rows(conn, task_pk, rec.cards)
    if not any(rec.artifacts for _, rec in tasks):
        return
    pk = next_artifact_id(conn)
    rows, indexed = [], []
    for task_pk, rec in tasks:
        for a in rec.artifacts:
            name, sha, encoding, kind, size, value, inherited = _artifact_columns(a)
            rows.append((pk, task_pk, name, sha, encoding, kind, size, value, int(inherited)))
            if searchable(name, inherited):
                indexed.append((pk, name, inherited, flow_of(rec), rec.step, a.preview))
            pk += 1
    conn.executemany(_INSERT_ARTIFACT, rows)
    index_artifacts(conn, indexed)


_INSERT_CARD = insert_sql(CARD, ("task_id", "seq", "type", "card_id", "sha", "error"))


def write_card_rows(conn: sqlite3.Connection, task_pk: int, cards: Iterable[CardRecord]) -> None:
    """A task attempt's card rows (after its blobs: `sha` references the HTML blob)."""
    conn.executemany(_INSERT_CARD, [(task_pk, seq, c.type, c.id, c.sha, c.error)
                                    for seq, c in enumerate(cards)])  # fmt: skip


def copy_card_rows(conn: sqlite3.Connection, rows: list[dict[str, Any]],
                   task_map: dict[int, int]) -> None:  # fmt: skip
    """Export/import: card rows read from another ledger (reads.card_rows), for the copied
    tasks (`task_map`: their pk there -> here)."""
    conn.executemany(_INSERT_CARD, [(task_map[r["task_id"]], r["seq"], r["type"], r["card_id"],
                                     r["sha"], r["error"]) for r in rows])  # fmt: skip


def s3_object_exists(conn: sqlite3.Connection, run_pk: int, key: str) -> bool:
    """Read under the write lock, so that put(overwrite=False) decides on what is there."""
    found = conn.execute("select 1 from s3_object where run_id = ? and key = ?", (run_pk, key))
    return found.fetchone() is not None


def put_s3_object(conn: sqlite3.Connection, run_pk: int, key: str, blob: codec.EncodedBlob) -> None:
    """An object stored by `S3(run=...)` (its blob stored in the same transaction)."""
    names = ("run_id", "key", "sha", "encoding", "size", "created_at")
    conn.execute(insert_sql(S3_OBJECT, names, "or replace"),
                 (run_pk, key, blob.sha, blob.encoding, blob.raw_size, now_iso()))  # fmt: skip


_INSERT_TASK_KEY = insert_sql(TASK_KEY, TASK_KEY.names(exclude=()), "or replace")
_INSERT_STEP_CODE = insert_sql(STEP_CODE, STEP_CODE.names(exclude=()), "or ignore")


def write_reuse_keys(conn: sqlite3.Connection, keyed: list[tuple[int, TaskRecord]]) -> None:
    """Each finished task's `run --reuse` key (taskreuse.py), and its step's code parts with
    the first task of that step in the run."""
    if not keyed:
        return
    conn.executemany(_INSERT_TASK_KEY, [(pk, r.reuse_key.key, r.reuse_key.code,
                                         r.reuse_key.inputs, r.reuse_key.env)
                                        for pk, r in keyed])  # fmt: skip
    conn.executemany(_INSERT_STEP_CODE, [(r.run_pk, r.step, r.reuse_key.code,
                                          json.dumps(r.reuse_key.parts))
                                         for _, r in keyed if r.reuse_key.parts is not None])  # fmt: skip


def trust_source(conn: sqlite3.Connection, source: str, trusted: bool) -> None:
    """`trust --source` / `--revoke --source`: the runs imported from a source ledger id."""
    conn.execute("update imported_run set trusted = ? where coalesce(source_ledger_id, '') = ?",
                 (int(trusted), source))  # fmt: skip


# -- entry points (one transaction each) ------------------------------------------------------


def ensure_flow(ledger: Writable, name: str) -> int:
    """The flow's id, inserting it the first time."""
    with ledger.write() as conn:
        return flow_pk(conn, name)


def create_run(
    ledger: Writable,
    flow_name: str,
    run_id: str,
    *,
    params: dict[str, Any],
    user: str | None,
    code: str | None,
    script_name: str | None,
    tags: Iterable[str] = (),
    system_tags: Iterable[str] = (),
    origin_run_id: str | None = None,
    python_version: str | None = None,
    ledgerflow_version: str | None = None,
    blobs: Iterable[codec.EncodedBlob] = (),
    graph_info: dict[str, Any] | None = None,
) -> int:
    """Insert a run in status 'running' (and its flow, the first time) with its tags and
    the blobs every task shares, in one transaction. Returns the run pk."""
    if python_version is None:
        from .codec import PYTHON_VERSION as python_version
    now = now_iso()
    blobs = list(blobs)
    with ledger.write() as conn:
        for blob in blobs:
            ledger.blobs.put(conn, blob)
        run_pk = insert_run(conn, {
            "flow_id": flow_pk(conn, flow_name), "run_id": run_id, "status": "running",
            "created_at": now, "params": json.dumps(params, default=repr, sort_keys=True),
            "user": user, "host": hostname(), "pid": os.getpid(), "heartbeat_at": now,
            "script_name": script_name, "code": code, "origin_run_id": origin_run_id,
            "python_version": python_version, "ledgerflow_version": ledgerflow_version,
            "machine_id": machine_id(),
            "graph_info": json.dumps(graph_info) if graph_info is not None else None,
        })  # fmt: skip
        add_tags(conn, run_pk, tags, system_tags)
    ledger.blobs.remember(b.sha for b in blobs)
    return run_pk


def heartbeat(ledger: Writable, run_pk: int) -> None:
    """Say the run is still running (see liveness.py)."""
    with ledger.write() as conn:
        set_heartbeat(conn, run_pk)


def finish_run(ledger: Writable, run_pk: int, status: str) -> None:
    with ledger.write() as conn:
        end_runs(conn, [run_pk], status)


def record_tasks(ledger: Writable, records: list[TaskRecord]) -> list[int]:
    """Write task attempts (finished, or started where `status` is 'running'), all in one
    transaction. A record with a `pk` finishes the row its start wrote. Returns the pks."""
    return commit_tasks(ledger, records)


def commit_tasks(ledger: Writable, records: list[TaskRecord],
                 logs: Iterable[tuple[int, str, str]] = ()) -> list[int]:  # fmt: skip
    """One transaction: finish the attempts among `records` whose start wrote a row (those
    with a `pk`), insert the others in their order (finished in one go, or 'running' rows
    of attempts that started), and add `logs` (task pk, stream, text) output of running
    tasks. Returns every record's pk, in order."""
    with ledger.write() as conn:
        logs = list(logs)
        if logs:
            append_logs(conn, logs)
        names: dict[int, str] = {}  # run pk -> flow name, for the search index

        def flow_of(rec: TaskRecord) -> str:
            if rec.run_pk not in names:
                names[rec.run_pk] = run_flow_name(conn, rec.run_pk)
            return names[rec.run_pk]

        blobs = [blob for rec in records for blob in rec.blobs]
        if blobs:
            ledger.blobs.put_many(conn, blobs)
        finish_tasks(conn, [rec for rec in records if rec.pk], flow_of)
        new = iter(insert_tasks(conn, [rec for rec in records if not rec.pk], flow_of))
        pks = [rec.pk or next(new) for rec in records]
        write_reuse_keys(conn, [(pk, rec) for pk, rec in zip(pks, records)
                                if rec.reuse_key is not None])  # fmt: skip
    if blobs:
        ledger.blobs.remember([blob.sha for blob in blobs])
        for blob in blobs:
            blob.discard()
    return pks


def store_blobs(ledger: Writable, blobs: list[codec.EncodedBlob]) -> None:
    """Commit blobs on their own: a task in its own process stores its large values
    before the runtime commits the task row that references them."""
    with ledger.write() as conn:
        for blob in blobs:
            ledger.blobs.put(conn, blob)
    ledger.blobs.remember(b.sha for b in blobs)
    for blob in blobs:
        blob.discard()


def running_runs(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(pk, pathspec, host, pid, heartbeat_at) of the runs in status 'running': those of a
    process that is gone are marked crashed (`end_runs`) when a writer opens the file."""
    return conn.execute(
        "select r.id, f.name || '/' || r.run_id, r.host, r.pid, r.heartbeat_at from run r "
        "join flow f on f.id = r.flow_id where r.status = 'running'"
    ).fetchall()
