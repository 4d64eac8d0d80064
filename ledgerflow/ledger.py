"""The only module that opens a ledger file: pragmas, schema migrations, transactions,
and the writes a run makes (blobs through `blobstore.py`).

One `Ledger` per file per process (`Ledger.open`). Each thread gets its own SQLite
connection (`connections.py`). Writes go through `write()`, a
`BEGIN IMMEDIATE` transaction: taking the write lock up front means SQLite's busy timeout
applies, where a deferred transaction that later upgrades would fail with SQLITE_BUSY at
once. Readers never block the writer (WAL).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from . import codec
from .blobstore import BlobStore, RawCache
from .cards.storage import write_card_rows
from .checkpointer import Checkpointer
from .clock import now_iso
from .connections import (
    BUSY_TIMEOUT_MS,
    Connections,
    StaleViewWarning,  # noqa: F401  (importable from here)
    _gone,
    _jitter,
    _uri_path,
    readonly_target,
    switch_to_wal,
    warn_stale,
)
from .exceptions import LedgerError, LedgerReadOnlyError, LedgerSchemaError
from .identify import CORE_TABLES, table_names, unknown_objects, unreadable
from .liveness import hostname, run_is_dead
from .location import resolve_ledger_path
from .provenance import machine_id
from .records import TaskRecord
from .schema import MIGRATIONS, OUR_TABLES, SCHEMA_VERSION
from .search_index import index_artifacts, index_task_text

WRITE_RETRIES = 5
WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
# Commits adding more blob bytes than this leave their checkpoint to a background thread.
BACKGROUND_CHECKPOINT_BYTES = 8 << 20
# A WAL file bigger than this is shrunk back to it when it starts over; at close, one bigger
# than WAL_KEPT_AT_CLOSE is started over and shrunk to a few pages (see close()).
WAL_SIZE_LIMIT = 64 << 20
WAL_KEPT_AT_CLOSE = 256 << 10
CHUNK_SIZE_ENV = "LEDGERFLOW_CHUNK_SIZE"
MAX_PAGES_ENV = "LEDGERFLOW_TEST_MAX_PAGES"
# Set in processes that must never open a ledger: the Dask workers DaskExecutor starts (and
# the tests' workers). Their tasks get inputs shipped and return blobs; an open there is a
# bug, or a step calling the Client API where the ledger is not.
FORBID_ENV = "LEDGERFLOW_FORBID_LEDGER"


_writers: weakref.WeakSet[Ledger]


class Ledger:
    """An open ledger file."""

    _open: dict[tuple[Any, ...], Ledger] = {}  # (path, readonly, reader) or (path, "task")
    _open_lock = threading.Lock()
    _inherited_from_parent: list[Ledger] = []

    def __init__(self, path: str | os.PathLike[str], readonly: bool | None = None, *,
                 reader: bool = False, task: bool = False):  # fmt: skip
        self.path = Path(path).absolute()
        if os.environ.get(FORBID_ENV):
            raise LedgerError(
                f"this process may not open a ledger ({self.path}): it is a remote worker "
                f"({FORBID_ENV} is set); a step run on Dask gets its inputs through self, "
                "so read other runs before the run, not with the Client API inside a step"
            )
        # A task's own process opens the run's ledger as it is: never creating the file (it
        # may have been deleted mid-run), migrating it or marking runs crashed.
        self._task = task
        if readonly is None:
            readonly = self.path.exists() and not os.access(self.path, os.W_OK)
        # A reader's connections cannot write (mode=ro, query_only): opening never changes
        # the file, never marks runs crashed, never fires a trigger planted in it. A
        # `reader` that is not readonly writes (tags, say) through a writer opened then.
        self.readonly = readonly or reader
        self._writes_on_demand = reader and not readonly
        self.stale = False  # a reader that could not see the WAL (see _connect)
        self.chunk_size = chunk_size_setting()
        self._flow_names: dict[int, str] = {}
        self._writer: Ledger | None = None
        self.db = self._connect()
        self.blobs = BlobStore(self.path, self.db.connection, self.chunk_size)
        self.checkpointer = Checkpointer(self.db.connection)
        self._meta: dict[str, str] = {}
        if task:
            return
        if not self.readonly:
            _writers.add(self)  # checkpointed at exit (see checkpoint_before_close)
        try:
            created = self._check_and_migrate()
            if not self.readonly:
                self._refuse_unknown_objects()
                if created:
                    from .trust_store import record_own

                    record_own(self.ledger_id, self.path)
                self.mark_crashed_runs()
        except BaseException:
            self.db.close_all()
            raise

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, readonly: bool | None = None,
             *, reader: bool = False) -> Ledger:  # fmt: skip
        """The process-wide Ledger for a path (resolved as documented when None).

        Commands and the Client API that read pass reader=True: the file is opened so that
        reading cannot write to it; a write they make later opens the ledger's writer."""
        resolved = resolve_ledger_path(path)
        if readonly is None:
            readonly = resolved.exists() and not os.access(resolved, os.W_OK)
        key = (str(resolved), bool(readonly), bool(reader and not readonly))
        with cls._open_lock:
            ledger = cls._open.get(key)
            if ledger is None:
                ledger = cls._open[key] = cls(resolved, readonly=readonly, reader=reader)
            return ledger

    @classmethod
    def for_task(cls, path: str) -> Ledger:
        """The run's ledger, as a task in a process of its own opens it (once per process)."""
        key = (path, "task")
        with cls._open_lock:
            ledger = cls._open.get(key)
            if ledger is None:
                ledger = cls._open[key] = cls(path, readonly=False, task=True)  # type: ignore[index]
            return ledger

    @classmethod
    def _finish_checkpoints(cls) -> None:
        """Let background checkpoints end: before a fork (a checkpoint thread inside SQLite
        could leave the child a mutex held forever; --executor process forks) and at exit
        (so that the file alone holds what was written)."""
        for ledger in list(cls._open.values()):
            ledger.checkpointer.finish()

    @classmethod
    def release_connections(cls) -> None:
        """Close every connection this process holds (each reopens on its next use). Done
        before forking a server whose children open the file themselves: SQLite keeps
        per-process lock state keyed by the file (the unix VFS's inode list), and a child
        that inherited it from a parent holding the file open would believe it holds locks
        it does not (SQLite's rule: no connection, nor its state, across a fork)."""
        for ledger in {id(x): x for x in [*cls._open.values(), *_writers]}.values():
            if ledger.db.has_connections():
                ledger.checkpointer.finish()
                ledger.db.close_all()

    @classmethod
    def _after_fork_in_child(cls) -> None:
        # SQLite connections must not cross a fork. Keep the parent's objects referenced
        # (closing them here could disturb the parent's locks) and start afresh.
        cls._inherited_from_parent = list(cls._open.values()) + list(_writers)
        _writers.clear()  # never checkpointed from here: their connections are the parent's
        cls._open = {}
        cls._open_lock = threading.Lock()

    @classmethod
    def forget(cls, path: str | os.PathLike[str]) -> None:
        """Close and drop a cached Ledger (tests, and after a file is replaced)."""
        with cls._open_lock:
            for key in [k for k in cls._open if k[0] == str(Path(path).absolute())]:
                cls._open.pop(key).close()

    def _connect(self) -> Connections:
        pragmas: list[tuple[str, Any]] = [
            ("busy_timeout", BUSY_TIMEOUT_MS),
            ("trusted_schema", "OFF"),
        ]
        if self.readonly:
            if not self.path.exists():
                raise LedgerError(
                    f"ledger {self.path} does not exist; check the path given to --db"
                )
            pragmas.append(("query_only", 1))
            return Connections(self._readonly_target(), uri=True, pragmas=pragmas,
                                path=self.path)  # fmt: skip
        if not self.path.parent.exists():
            raise LedgerError(
                f"cannot create ledger {self.path}: folder {self.path.parent} does not exist"
            )
        # 8 KB pages (set before the file's first write; a no-op afterwards). Measured here
        # (scripts/bench.py): 200+200 MB flow 3.23 s at 4 KB, 2.75 s at 8 KB, 2.72 s at 16 KB;
        # a 1000-task foreach's ledger 1.81 MB at 4 KB, 1.97 MB at 8 KB, 2.3+ MB at 16 KB.
        # WAL is set once, when the ledger is created (_check_and_migrate): setting it on
        # every connection would change another application's file before we know what it
        # is, and costs each connection a lock a reader without busy timeout could meet.
        pragmas = [("page_size", 8192)] + pragmas
        pragmas += [
            ("synchronous", "normal"),
            ("foreign_keys", 1),
            ("journal_size_limit", WAL_SIZE_LIMIT),
        ]
        if os.environ.get(MAX_PAGES_ENV):
            # Test hook: a file that cannot grow past N pages behaves like a full disk.
            pragmas.append(("max_page_count", int(os.environ[MAX_PAGES_ENV])))
        # The first connection may create the file; later ones (other threads) must find it,
        # never make a new empty one where a ledger was deleted or moved mid-run.
        base = f"file:{_uri_path(self.path)}?mode="
        return Connections(base + ("rw" if self._task else "rwc"), uri=True, pragmas=pragmas,
                           path=self.path,
                            then=base + "rw")  # fmt: skip

    def _readonly_target(self) -> str:
        target, self.stale = readonly_target(self.path)
        if self.stale:
            warn_stale(self.path)
        return target

    def _check_and_migrate(self) -> bool:
        """Tell what the file is before changing anything in it, then (writers) create or
        migrate it. True if this call created the ledger."""
        created = False
        try:
            version, names = self._user_version(), table_names(self.conn)
            self._refuse_foreign(version, names)
            if version < SCHEMA_VERSION:
                if self.readonly:
                    if version == 0:
                        raise LedgerSchemaError(
                            f"{self.path} is an empty file, not a ledgerflow ledger; run a "
                            "flow to create one, or pass the path of a ledger to --db"
                        )
                    raise LedgerSchemaError(
                        f"{self.path} was written by an older ledgerflow (schema {version}); "
                        "open it once with write access to upgrade it"
                    )
                if version == 0 and not names:
                    # A new file: WAL from its first transaction on (persistent in the file).
                    switch_to_wal(self.conn)
                with self.write() as conn:
                    # Re-read under the write lock: another process may have migrated already.
                    version = self._user_version()
                    self._refuse_foreign(version, table_names(conn))
                    created = version == 0
                    for number, migration in enumerate(MIGRATIONS, start=1):
                        if number > version:
                            migration(conn)
                    if version < SCHEMA_VERSION:
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                        self._init_meta()
                    version = SCHEMA_VERSION
        except sqlite3.DatabaseError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise LedgerError(
                    f"{self.path} stayed locked by another process for over "
                    f"{BUSY_TIMEOUT_MS // 1000}s; try again when it finishes"
                ) from None
            raise unreadable(self.path, e) from None
        if version > SCHEMA_VERSION:
            raise LedgerSchemaError(
                f"{self.path} uses ledger schema {version}, newer than this ledgerflow "
                f"understands ({SCHEMA_VERSION}); upgrade ledgerflow to open it"
            )
        return created

    def _user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_foreign(self, version: int, names: set[str]) -> None:
        """Another application's SQLite file is refused before anything changes in it."""
        if not names:
            return
        if version == 0:
            foreign = sorted(names - set(OUR_TABLES))
        else:
            foreign = sorted(names - set(OUR_TABLES)) if not CORE_TABLES <= names else []
            if not CORE_TABLES <= names and not foreign:
                foreign = sorted(names)
        if foreign:
            raise LedgerSchemaError(
                f"{self.path} is an SQLite database but not a ledgerflow ledger (it has "
                f"tables {', '.join(foreign[:5])}); choose another file for --db"
            )

    def _refuse_unknown_objects(self) -> None:
        """Writers refuse a ledger holding triggers, views or tables ledgerflow did not make:
        a planted trigger would run on our first write."""
        unknown = unknown_objects(self.conn, self._user_version())
        if unknown:
            raise LedgerSchemaError(
                f"{self.path} holds schema objects ledgerflow did not create "
                f"({', '.join(unknown[:5])}); it is refused for writing. Run `ledgerflow "
                "doctor` on it, and drop them with sqlite3 if they are yours"
            )

    def _init_meta(self) -> None:
        import uuid

        rows = [
            ("ledger_id", uuid.uuid4().hex),
            ("created_at", now_iso()),
            ("created_on", hostname()),
        ]
        self.conn.executemany("insert or ignore into meta(key, value) values (?, ?)", rows)

    # -- connections and transactions ------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        return self.db.connection()

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(params))

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A `BEGIN IMMEDIATE` transaction, retried while another writer holds the lock."""
        if self._writes_on_demand:
            if self._writer is None:
                self._writer = Ledger.open(self.path, readonly=False)
            with self._writer.write() as conn:
                yield conn
            return
        if self.readonly:
            raise LedgerReadOnlyError(
                f"ledger {self.path} is open read-only; copy it somewhere writable to change it"
            )
        if not self.path.exists():
            # Writing on would go to an unlinked file that nobody can ever read.
            raise _gone(self.path)
        conn = self.conn
        self.blobs.reset_pending()
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
                        f"cannot write to {self.path}: {e}; another process has held its "
                        f"write lock for over {BUSY_TIMEOUT_MS // 1000}s"
                    ) from None
                time.sleep(_jitter(0.05, 0.2) * (attempt + 1))
        try:
            yield conn
        except sqlite3.OperationalError as e:  # e.g. disk full: nothing half-written
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise _write_error(self.path, e) from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        else:
            big = self.blobs.pending_bytes() >= BACKGROUND_CHECKPOINT_BYTES
            if big:  # this commit must not copy its pages into the file itself
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            try:
                conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise _write_error(self.path, e) from None
            finally:
                if big:
                    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            if big:
                self.checkpointer.request()

    def close(self) -> None:
        self.checkpointer.finish()
        self.checkpoint_before_close()
        self.db.close_all()

    def checkpoint_before_close(self) -> None:
        """Copy what the WAL holds into the file (PASSIVE: never blocks a reader), so that
        the .db file alone holds every commit. Writers' connections skip SQLite's own
        checkpoint on close, which locks every reader out while it runs (see
        connections.no_checkpoint_on_close)."""
        if self.readonly or not self.db.has_connections():
            return
        with contextlib.suppress(sqlite3.Error, LedgerError):
            for _ in range(10):
                # A reader in the middle of a query keeps frames from being copied; readers'
                # queries are short: try again briefly. The next process to open the file
                # first must otherwise replay a large WAL, and readers with no busy timeout
                # meet "database is locked" meanwhile.
                _, frames, done = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames == done:
                    break
                time.sleep(0.005)
            wal = Path(f"{self.path}-wal")
            if frames == done and wal.exists() and wal.stat().st_size > WAL_KEPT_AT_CLOSE:
                # All copied, but the file keeps its size until a write starts the WAL
                # over, when it shrinks to journal_size_limit: make that small write with
                # the limit at 0, so what stays beside the ledger is a few pages.
                self.conn.execute("PRAGMA journal_size_limit = 0")
                with self.write() as conn:
                    conn.execute("insert or replace into meta(key, value) values "
                                 "('wal_reset_at', ?)", (now_iso(),))  # fmt: skip
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")

    @classmethod
    def _checkpoint_at_exit(cls) -> None:
        cls._finish_checkpoints()
        for ledger in list(_writers):
            ledger.checkpoint_before_close()

    def mark_crashed_runs(self) -> list[str]:
        """Runs left 'running' by a process that is gone become 'crashed' (done on open).
        Returns their pathspecs."""
        rows = self.execute(
            "select r.id, f.name || '/' || r.run_id, r.host, r.pid, r.heartbeat_at from run r "
            "join flow f on f.id = r.flow_id where r.status = 'running'"
        ).fetchall()
        dead = [(pk, spec) for pk, spec, host, pid, beat in rows if run_is_dead(host, pid, beat)]
        if dead:
            with self.write() as conn:
                now = now_iso()
                conn.executemany(
                    "update run set status = 'crashed', finished_at = ? "
                    "where id = ? and status = 'running'",
                    [(now, pk) for pk, _ in dead],
                )
                conn.executemany(_CRASH_RUNNING_TASKS, [(now, pk) for pk, _ in dead])
        return [spec for _, spec in dead]

    # -- facts about the file --------------------------------------------------------

    def meta(self, key: str) -> str | None:
        if key not in self._meta:
            row = self.execute("select value from meta where key = ?", (key,)).fetchone()
            if row is None:
                return None
            self._meta[key] = row[0]
        return self._meta[key]

    @property
    def ledger_id(self) -> str:
        return self.meta("ledger_id") or ""

    # -- blobs (see blobstore.py) -------------------------------------------------------

    @property
    def cache(self) -> RawCache:
        return self.blobs.cache

    def put_blob(self, conn: sqlite3.Connection, blob: codec.EncodedBlob) -> bool:
        """Store a blob unless its SHA is already present. Call inside write(). True if new."""
        return self.blobs.put(conn, blob)

    def knows_blob(self, sha: str) -> bool:
        """True if this process has seen the blob committed (cheap, no query)."""
        return self.blobs.knows(sha)

    def forget_known_blobs(self) -> None:
        """After blobs were deleted (gc): stop assuming any SHA is present."""
        self.blobs.forget_known()

    def read_raw(self, sha: str) -> tuple[str, bytes | bytearray]:
        """(encoding, raw bytes) of a blob, verified against its SHA-256."""
        return self.blobs.read_raw(sha)

    def load(self, sha: str, before_unpickle: Callable[[], None] | None = None) -> Any:
        """The value stored under a SHA, as a fresh object, verified before it is decoded;
        `before_unpickle` (a trust check) runs first when the blob is a pickle."""
        return self.blobs.load(sha, before_unpickle)

    # -- the writes a run makes ---------------------------------------------------------

    def ensure_flow(self, name: str) -> int:
        row = self.execute("select id from flow where name = ?", (name,)).fetchone()
        if row:
            return int(row[0])
        with self.write() as conn:
            conn.execute(
                "insert or ignore into flow(name, created_at) values (?, ?)", (name, now_iso())
            )
            return int(conn.execute("select id from flow where name = ?", (name,)).fetchone()[0])

    def create_run(
        self,
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
        python_version: str = codec.PYTHON_VERSION,
        ledgerflow_version: str | None = None,
        blobs: Iterable[codec.EncodedBlob] = (),
        graph_info: dict[str, Any] | None = None,
    ) -> int:
        """Insert a run in status 'running' (and its flow, the first time) with its tags and
        the blobs every task shares, in one transaction."""
        now = now_iso()
        blobs = list(blobs)
        with self.write() as conn:
            conn.execute("insert or ignore into flow(name, created_at) values (?, ?)",
                         (flow_name, now))  # fmt: skip
            flow_pk = int(conn.execute("select id from flow where name = ?",
                                       (flow_name,)).fetchone()[0])  # fmt: skip
            for blob in blobs:
                self.put_blob(conn, blob)
            cur = conn.execute(
                "insert into run(flow_id, run_id, status, created_at, params, user, host, pid,"
                " heartbeat_at, script_name, code, origin_run_id, python_version,"
                " ledgerflow_version, machine_id, graph_info)"
                " values (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    flow_pk,
                    run_id,
                    now,
                    json.dumps(params, default=repr, sort_keys=True),
                    user,
                    hostname(),
                    os.getpid(),
                    now,
                    script_name,
                    code,
                    origin_run_id,
                    python_version,
                    ledgerflow_version,
                    machine_id(),
                    json.dumps(graph_info) if graph_info is not None else None,
                ),
            )
            run_pk = cast(int, cur.lastrowid)  # set by the insert just made
            conn.executemany(
                "insert or ignore into tag(run_id, tag, system) values (?, ?, ?)",
                [(run_pk, t, 0) for t in tags] + [(run_pk, t, 1) for t in system_tags],
            )
        self.blobs.remember(b.sha for b in blobs)
        return run_pk

    def heartbeat(self, run_pk: int) -> None:
        """Say the run is still running (see liveness.py)."""
        with self.write() as conn:
            conn.execute("update run set heartbeat_at = ? where id = ?", (now_iso(), run_pk))

    def finish_run(self, run_pk: int, status: str) -> None:
        with self.write() as conn:
            now = now_iso()
            conn.execute(
                "update run set status = ?, finished_at = ? where id = ?", (status, now, run_pk)
            )
            # A task the run could not see end (its process vanished with the writer's
            # ability to record it) ends with the run, as crashed.
            conn.execute(_CRASH_RUNNING_TASKS, (now, run_pk))

    def record_tasks(self, records: list[TaskRecord]) -> list[int]:
        """Write task attempts (finished, or started where `status` is 'running'), all in one
        transaction. A record with a `pk` finishes the row its start wrote. Returns the pks."""
        return self.commit_tasks(records, [])[0]

    def commit_tasks(
        self,
        finished: list[TaskRecord],
        started: list[TaskRecord],
        logs: list[tuple[int, str, str]] = (),  # type: ignore[assignment]
    ) -> tuple[list[int], list[int]]:
        """One transaction: finish (or insert) the `finished` attempts, insert the rows of
        the `started` ones (status 'running'), and add `logs` (task pk, stream, text) output
        of running tasks. Returns the pks of `finished` and of `started`."""
        with self.write() as conn:
            self.append_logs_in(conn, list(logs))
            done = [self._finish_task(conn, rec) if rec.pk else self._insert_task(conn, rec)
                    for rec in finished]  # fmt: skip
            begun = [self._insert_task(conn, rec) for rec in started]
            _write_reuse_keys(conn, [(pk, rec) for pk, rec in zip(done, finished)
                                     if rec.reuse_key is not None])  # fmt: skip
        for rec in finished:
            self.blobs.remember(b.sha for b in rec.blobs)
            for blob in rec.blobs:
                blob.discard()
        return done, begun

    def store_blobs(self, blobs: list[codec.EncodedBlob]) -> None:
        """Commit blobs on their own: a task in its own process stores its large values
        before the runtime commits the task row that references them."""
        with self.write() as conn:
            for blob in blobs:
                self.put_blob(conn, blob)
        self.blobs.remember(b.sha for b in blobs)
        for blob in blobs:
            blob.discard()

    @staticmethod
    def _next_artifact_id(conn: sqlite3.Connection) -> int:
        # Explicit ids let the search index share them; we hold the write lock.
        return int(conn.execute("select coalesce(max(id), 0) + 1 from artifact").fetchone()[0])

    def _flow_name(self, conn: sqlite3.Connection, run_pk: int) -> str:
        name = self._flow_names.get(run_pk)
        if name is None:
            name = self._flow_names[run_pk] = conn.execute(
                "select f.name from run r join flow f on f.id = r.flow_id where r.id = ?",
                (run_pk,),
            ).fetchone()[0]
        return name

    def _insert_task(self, conn: sqlite3.Connection, rec: TaskRecord) -> int:
        cur = conn.execute(
            "insert into task(run_id, step, task_id, attempt, status, started_at, finished_at,"
            " foreach_index, foreach_stack, exception_type, exception, traceback,"
            " origin_pathspec, transition, host)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.run_pk,
                rec.step,
                rec.task_id,
                rec.attempt,
                rec.status,
                rec.started_at,
                rec.finished_at,
                rec.foreach_index,
                json.dumps(rec.foreach_stack),
                rec.exception_type,
                rec.exception,
                rec.traceback,
                rec.origin_pathspec,
                json.dumps(rec.transition) if rec.transition is not None else None,
                rec.host,
            ),
        )
        task_pk = cast(int, cur.lastrowid)  # set by the insert just made
        if rec.parent_pks:
            conn.executemany(
                "insert or ignore into task_parent(task_id, parent_id) values (?, ?)",
                [(task_pk, p) for p in rec.parent_pks],
            )
        logs = [(task_pk, "stdout", rec.stdout), (task_pk, "stderr", rec.stderr)]
        conn.executemany("insert into log(task_id, stream, text) values (?, ?, ?)", logs)
        self._insert_artifacts(conn, task_pk, rec)
        if rec.status != "running":
            index_task_text(conn, task_pk)  # logs and exception, for search --kind log|exception
        return task_pk

    def _finish_task(self, conn: sqlite3.Connection, rec: TaskRecord) -> int:
        """A started task's row gets its outcome (its start time stays the one the runtime
        wrote when it launched the task); its output so far is already in `log`."""
        assert rec.pk is not None
        conn.execute(
            "update task set status = ?, finished_at = ?, exception_type = ?,"
            " exception = ?, traceback = ?, origin_pathspec = ?, transition = ?, host = ?"
            " where id = ?",
            (
                rec.status,
                rec.finished_at,
                rec.exception_type,
                rec.exception,
                rec.traceback,
                rec.origin_pathspec,
                json.dumps(rec.transition) if rec.transition is not None else None,
                rec.host,
                rec.pk,
            ),
        )
        self.append_logs_in(conn, [(rec.pk, "stdout", rec.stdout), (rec.pk, "stderr", rec.stderr)])
        self._insert_artifacts(conn, rec.pk, rec)
        index_task_text(conn, rec.pk)
        return rec.pk

    @staticmethod
    def append_logs_in(conn: sqlite3.Connection, chunks: list[tuple[int, str, str]]) -> None:
        conn.executemany(
            "update log set text = text || ? where task_id = ? and stream = ?",
            [(text, pk, stream) for pk, stream, text in chunks if text],
        )

    def _insert_artifacts(self, conn: sqlite3.Connection, task_pk: int, rec: TaskRecord) -> None:
        for blob in rec.blobs:
            self.put_blob(conn, blob)
        write_card_rows(conn, task_pk, rec.cards)
        if not rec.artifacts:
            return
        first_id = self._next_artifact_id(conn)
        conn.executemany(
            "insert into artifact(id, task_id, name, sha, encoding, type, size, value,"
            " inherited) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    first_id + i,
                    task_pk,
                    a.name,
                    a.sha,
                    a.encoding,
                    a.type,
                    a.size,
                    a.value,
                    int(a.inherited),
                )
                for i, a in enumerate(rec.artifacts)
            ],
        )
        flow_name = self._flow_name(conn, rec.run_pk)
        index_artifacts(conn, ((first_id + i, a.name, a.inherited, flow_name, rec.step, a.preview)
                               for i, a in enumerate(rec.artifacts)))  # fmt: skip


# Tasks a run left running when it ended or died: they stopped without an outcome.
_CRASH_RUNNING_TASKS = (
    "update task set status = 'crashed', finished_at = ? where run_id = ? and status = 'running'"
)


def chunk_size_setting() -> int:
    """$LEDGERFLOW_CHUNK_SIZE, else the default; never past what readers accept."""
    from .blobstore import MAX_CHUNK_SIZE

    text = os.environ.get(CHUNK_SIZE_ENV) or str(codec.DEFAULT_CHUNK_SIZE)
    if not text.isdigit() or not 1024 <= int(text) <= MAX_CHUNK_SIZE:
        raise LedgerError(f"{CHUNK_SIZE_ENV}={text!r} is not a chunk size; give bytes between "
                          f"1024 and {MAX_CHUNK_SIZE}, or unset it")  # fmt: skip
    return int(text)


def _write_error(path: Path, error: sqlite3.Error) -> LedgerError:
    text = str(error)
    if "full" in text:
        return LedgerError(f"the disk holding {path} is full; nothing was half-written. Free "
                           "some space, then `resume` the run")  # fmt: skip
    if "readonly" in text or "read-only" in text:
        return LedgerReadOnlyError(f"{path} cannot be written (read-only file or folder)")
    return LedgerError(f"cannot write to {path}: {text}")


_writers = weakref.WeakSet()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=Ledger._finish_checkpoints,
                        after_in_child=Ledger._after_fork_in_child)  # fmt: skip
atexit.register(Ledger._checkpoint_at_exit)


def _write_reuse_keys(conn: sqlite3.Connection, keyed: list[tuple[int, TaskRecord]]) -> None:
    """Each finished task's reuse key (taskreuse.py), and its step's code parts with the first
    task of that step in the run."""
    conn.executemany(
        "insert or replace into task_key(task_pk, key, code, inputs, env) values (?, ?, ?, ?, ?)",
        [(pk, k.key, k.code, k.inputs, k.env) for pk, k in ((pk, r.reuse_key) for pk, r in keyed)],
    )
    conn.executemany(
        "insert or ignore into step_code(run_pk, step, code, parts) values (?, ?, ?, ?)",
        [(r.run_pk, r.step, r.reuse_key.code, json.dumps(r.reuse_key.parts))
         for _, r in keyed if r.reuse_key.parts is not None],
    )  # fmt: skip
