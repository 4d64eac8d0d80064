"""The only module that opens a ledger file: pragmas, schema migrations, transactions,
blob storage, and the writes a run makes.

One `Ledger` per file per process (`Ledger.open`). Each thread gets its own SQLite
connection (peewee's thread-local connection state). Writes go through `write()`, a
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
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


from . import codec
from .cards.storage import write_card_rows
from .checkpointer import Checkpointer
from .clock import now_iso
from .exceptions import CorruptBlobError, LedgerError, LedgerReadOnlyError, LedgerSchemaError
from .fulltext import index_task_text
from .liveness import hostname, run_is_dead
from .location import resolve_ledger_path
from .provenance import machine_id
from .records import TaskRecord
from .schema import MIGRATIONS, OUR_TABLES, SCHEMA_VERSION, searchable

BUSY_TIMEOUT_MS = 30_000
WRITE_RETRIES = 5
WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
# Commits adding more blob bytes than this leave their checkpoint to a background thread.
BACKGROUND_CHECKPOINT_BYTES = 8 << 20
CHUNK_SIZE_ENV = "LEDGERFLOW_CHUNK_SIZE"
MAX_PAGES_ENV = "LEDGERFLOW_TEST_MAX_PAGES"
# Set in processes that must never open a ledger: the Dask workers DaskExecutor starts (and
# the tests' workers). Their tasks get inputs shipped and return blobs; an open there is a
# bug, or a step calling the Client API where the ledger is not.
FORBID_ENV = "LEDGERFLOW_FORBID_LEDGER"


class RawCache:
    """Recently used raw blob bytes by SHA, bounded in total size (thread-safe LRU)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_item: int = 1024 * 1024):
        self.max_bytes, self.max_item = max_bytes, max_item
        self._items: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, sha: str) -> tuple[str, bytes] | None:
        with self._lock:
            item = self._items.get(sha)
            if item is not None:
                self._items.move_to_end(sha)
            return item

    def put(self, sha: str, encoding: str, raw: bytes) -> None:
        if len(raw) > self.max_item:
            return
        with self._lock:
            if sha in self._items:
                return
            self._items[sha] = (encoding, raw)
            self._size += len(raw)
            while self._size > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self._size -= len(old)


class Ledger:
    """An open ledger file."""

    _open: dict[tuple[str, bool], Ledger] = {}
    _open_lock = threading.Lock()
    _inherited_from_parent: list[Ledger] = []

    def __init__(self, path: str | os.PathLike[str], readonly: bool | None = None,
                 task: bool = False):  # fmt: skip
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
        self.readonly = readonly
        self.chunk_size = int(os.environ.get(CHUNK_SIZE_ENV) or codec.DEFAULT_CHUNK_SIZE)
        self.cache = RawCache()
        # SHAs committed to this file by this process: their blobs need not be built again.
        self._known_shas: set[str] = set()
        self._flow_names: dict[int, str] = {}
        self.db = self._connect()
        self._wal_bytes = threading.local()  # blob bytes the open write() is adding
        self.checkpointer = Checkpointer(self.db.connection)
        self._meta: dict[str, str] = {}
        if task:
            return
        try:
            self._check_and_migrate()
            if not self.readonly:
                self.mark_crashed_runs()
        except BaseException:
            self.db.close_all()
            raise

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, readonly: bool | None = None) -> Ledger:
        """The process-wide Ledger for a path (resolved as documented when None)."""
        resolved = resolve_ledger_path(path)
        if readonly is None:
            readonly = resolved.exists() and not os.access(resolved, os.W_OK)
        key = (str(resolved), bool(readonly))
        with cls._open_lock:
            ledger = cls._open.get(key)
            if ledger is None:
                ledger = cls._open[key] = cls(resolved, readonly=readonly)
            return ledger

    @classmethod
    def for_task(cls, path: str) -> Ledger:
        """The run's ledger, as a task in a process of its own opens it (once per process)."""
        key = (path, "task")
        with cls._open_lock:
            ledger = cls._open.get(key)  # type: ignore[call-overload]
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
    def _after_fork_in_child(cls) -> None:
        # SQLite connections must not cross a fork. Keep the parent's objects referenced
        # (closing them here could disturb the parent's locks) and start afresh.
        cls._inherited_from_parent = list(cls._open.values())
        cls._open = {}
        cls._open_lock = threading.Lock()

    @classmethod
    def forget(cls, path: str | os.PathLike[str]) -> None:
        """Close and drop a cached Ledger (tests, and after a file is replaced)."""
        with cls._open_lock:
            for key in [k for k in cls._open if k[0] == str(Path(path).absolute())]:
                cls._open.pop(key).close()

    def _connect(self) -> "_Connections":
        pragmas: list[tuple[str, Any]] = [("busy_timeout", BUSY_TIMEOUT_MS), ("trusted_schema", "OFF")]
        if self.readonly:
            if not self.path.exists():
                raise LedgerError(f"ledger {self.path} does not exist; check the path given to --db")
            # A WAL file in a folder we cannot write cannot get its -shm file; `immutable`
            # tells SQLite nobody writes it, so it reads without one.
            immutable = "&immutable=1" if not os.access(self.path.parent, os.W_OK) else ""
            target = f"file:{_uri_path(self.path)}?mode=ro{immutable}"
            return _Connections(target, uri=True, pragmas=pragmas, path=self.path)
        if not self.path.parent.exists():
            raise LedgerError(
                f"cannot create ledger {self.path}: folder {self.path.parent} does not exist"
            )
        # 8 KB pages (set before the file's first write; a no-op afterwards). Measured here
        # (scripts/bench.py): 200+200 MB flow 3.23 s at 4 KB, 2.75 s at 8 KB, 2.72 s at 16 KB;
        # a 1000-task foreach's ledger 1.81 MB at 4 KB, 1.97 MB at 8 KB, 2.3+ MB at 16 KB.
        pragmas = [("page_size", 8192)] + pragmas
        pragmas += [("journal_mode", "wal"), ("synchronous", "normal"), ("foreign_keys", 1)]
        if os.environ.get(MAX_PAGES_ENV):
            # Test hook: a file that cannot grow past N pages behaves like a full disk.
            pragmas.append(("max_page_count", int(os.environ[MAX_PAGES_ENV])))
        # The first connection may create the file; later ones (other threads) must find it,
        # never make a new empty one where a ledger was deleted or moved mid-run.
        base = f"file:{_uri_path(self.path)}?mode="
        return _Connections(base + ("rw" if self._task else "rwc"), uri=True, pragmas=pragmas, path=self.path,
                            then=base + "rw")  # fmt: skip

    def _check_and_migrate(self) -> None:
        try:
            version = self._user_version()
            if version < SCHEMA_VERSION:
                if self.readonly:
                    raise LedgerSchemaError(
                        f"{self.path} was written by an older ledgerflow (schema {version}); "
                        "open it once with write access to upgrade it"
                    )
                with self.write():
                    # Re-read under the write lock: another process may have migrated already.
                    version = self._user_version()
                    if version == 0:
                        self._refuse_foreign_database()
                    for number, migration in enumerate(MIGRATIONS, start=1):
                        if number > version:
                            migration(self.conn)
                    if version < SCHEMA_VERSION:
                        self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                        self._init_meta()
                    version = SCHEMA_VERSION
        except sqlite3.DatabaseError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise LedgerError(
                    f"{self.path} stayed locked by another process for over "
                    f"{BUSY_TIMEOUT_MS // 1000}s; try again when it finishes"
                ) from None
            raise LedgerSchemaError(
                f"{self.path} is not a ledgerflow ledger ({e}); pass the path of a ledger "
                "file to --db, or move this file away"
            ) from None
        if version > SCHEMA_VERSION:
            raise LedgerSchemaError(
                f"{self.path} uses ledger schema {version}, newer than this ledgerflow "
                f"understands ({SCHEMA_VERSION}); upgrade ledgerflow to open it"
            )

    def _user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_foreign_database(self) -> None:
        names = {r[0] for r in self.conn.execute(
            "select name from sqlite_master where type in ('table', 'view')"
        )}
        foreign = names - set(OUR_TABLES)
        if foreign:
            raise LedgerSchemaError(
                f"{self.path} is an SQLite database but not a ledgerflow ledger (it has "
                f"tables {', '.join(sorted(foreign)[:5])}); choose another file for --db"
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
        if self.readonly:
            raise LedgerReadOnlyError(
                f"ledger {self.path} is open read-only; copy it somewhere writable to change it"
            )
        if not self.path.exists():
            # Writing on would go to an unlinked file that nobody can ever read.
            raise _gone(self.path)
        conn = self.conn
        self._wal_bytes.n = 0
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
            big = self._wal_bytes.n >= BACKGROUND_CHECKPOINT_BYTES
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
        self.db.close_all()

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

    # -- blobs -------------------------------------------------------------------------

    def put_blob(self, conn: sqlite3.Connection, blob: codec.EncodedBlob) -> bool:
        """Store a blob unless its SHA is already present. Call inside write(). True if new."""
        cur = conn.execute(
            "insert or ignore into blob(sha, codec, encoding, raw_size, stored_size, chunk_size,"
            " n_chunks, python_version, created_at, preview) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                blob.sha,
                codec.CODEC,
                blob.encoding,
                blob.raw_size,
                blob.stored_size,
                self.chunk_size,
                blob.n_chunks,
                codec.PYTHON_VERSION if blob.encoding == codec.PICKLE else None,
                now_iso(),
                blob.preview,
            ),
        )
        if cur.rowcount == 0:
            return False
        self._wal_bytes.n = getattr(self._wal_bytes, "n", 0) + blob.stored_size
        # One chunk in memory at a time, whether the chunks are in memory or spilled to disk.
        if blob.raw_size < _BLOB_IO_FROM:
            conn.executemany(
                "insert into blob_chunk(sha, seq, data) values (?, ?, ?)",
                ((blob.sha, seq, chunk) for seq, chunk in enumerate(blob.iter_chunks())),
            )
            return True
        # Large chunks go in by incremental blob I/O: a zeroblob row, then its bytes written
        # in place (188 MB: 0.33 s, against 0.41 s binding each chunk as a value).
        for seq, chunk in enumerate(blob.iter_chunks()):
            row_id = conn.execute(
                "insert into blob_chunk(sha, seq, data) values (?, ?, zeroblob(?))",
                (blob.sha, seq, len(chunk)),
            ).lastrowid
            with conn.blobopen("blob_chunk", "data", row_id) as target:
                target.write(chunk)
        return True

    def knows_blob(self, sha: str) -> bool:
        """True if this process has seen the blob committed (cheap, no query)."""
        return sha in self._known_shas

    def forget_known_blobs(self) -> None:
        """After blobs were deleted (gc): stop assuming any SHA is present."""
        self._known_shas.clear()

    def _blob_meta(self, sha: str) -> tuple[str, int, int, int]:
        row = self.execute(
            "select encoding, raw_size, n_chunks, chunk_size from blob where sha = ?", (sha,)
        ).fetchone()
        if row is None:
            raise CorruptBlobError(
                f"blob {sha[:12]} is missing from {self.path}; run `ledgerflow doctor`"
            )
        return row[0], int(row[1]), int(row[2]), int(row[3])

    def _frames(self, sha: str, n_chunks: int, raw_size: int) -> Iterator[bytes]:
        """The blob's stored chunks in order, fetched one at a time. Large ones are read by
        incremental blob I/O: measured here, 188 MB of 16 MB chunks in 0.05 s, against 0.25 s
        selecting them as values (SQLite walks each chunk's overflow pages to build it)."""
        if raw_size < _BLOB_IO_FROM:
            for seq in range(n_chunks):
                row = self.execute(
                    "select data from blob_chunk where sha = ? and seq = ?", (sha, seq)
                ).fetchone()
                if row is None:
                    raise self._missing_chunk(sha, seq, n_chunks)
                yield row[0]
            return
        conn = self.conn
        ids = dict(conn.execute("select seq, id from blob_chunk where sha = ?", (sha,)))
        for seq in range(n_chunks):
            try:
                with conn.blobopen("blob_chunk", "data", ids[seq], readonly=True) as chunk:
                    data = chunk.read()
            except (KeyError, sqlite3.OperationalError):  # gone, e.g. removed meanwhile
                raise self._missing_chunk(sha, seq, n_chunks) from None
            yield data

    def _missing_chunk(self, sha: str, seq: int, n_chunks: int) -> CorruptBlobError:
        return CorruptBlobError(
            f"blob {sha[:12]} in {self.path} lacks chunk {seq} of {n_chunks}; "
            "run `ledgerflow doctor`"
        )

    def _damaged(self, sha: str, why: str) -> CorruptBlobError:
        return CorruptBlobError(
            f"blob {sha[:12]} in {self.path} {why} (the file is damaged); run `ledgerflow doctor`"
        )

    def read_raw(self, sha: str) -> tuple[str, bytes | bytearray]:
        """(encoding, raw bytes) of a blob, verified against its SHA-256. Large blobs are
        assembled chunk by chunk into one buffer (a bytearray)."""
        cached = self.cache.get(sha)
        if cached is not None:
            return cached
        return self._read_raw(sha, self._blob_meta(sha))

    def _read_raw(self, sha: str, meta: tuple[str, int, int, int]) -> tuple[str, bytes | bytearray]:
        encoding, raw_size, n_chunks, _ = meta
        out = bytearray(raw_size)
        self._verified_read(sha, meta, lambda reader: reader.readinto(out), "decompressed")
        if n_chunks > 1:
            return encoding, out
        raw = bytes(out)
        self.cache.put(sha, encoding, raw)
        return encoding, raw

    def load(self, sha: str) -> Any:
        """The value stored under a SHA, as a fresh object."""
        cached = self.cache.get(sha)
        if cached is not None:
            return codec.decode(*cached)
        meta = self._blob_meta(sha)
        encoding, _, n_chunks, _ = meta
        if encoding == codec.PICKLE and n_chunks > 1:
            # Unpickled as it decompresses: about one copy of the value in memory.
            import pickle

            return self._verified_read(sha, meta, pickle.load, "read")
        return codec.decode(*self._read_raw(sha, meta))

    def _verified_read(self, sha: str, meta: tuple[str, int, int, int],
                       consume: Callable[[codec.ChunkReader], Any], verb: str) -> Any:  # fmt: skip
        """consume(reader) over the blob's chunks, then check that it read exactly the blob
        and (one-chunk blobs) its SHA-256; any damage raises CorruptBlobError."""
        _, raw_size, n_chunks, chunk_size = meta
        reader = codec.ChunkReader(self._frames(sha, n_chunks, raw_size), raw_size,
                                   max(chunk_size, 1), hash_sha=_verify_sha(n_chunks))  # fmt: skip
        try:
            result = consume(reader)
            digest = reader.sha_after_draining()
        except CorruptBlobError:
            raise
        except Exception as e:
            raise self._damaged(sha, f"cannot be {verb} ({type(e).__name__}: {e})") from None
        if reader.consumed != raw_size or digest not in (sha, None):
            raise self._damaged(sha, "does not match its SHA-256")
        return result

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
            run_pk = int(cur.lastrowid)
            conn.executemany(
                "insert or ignore into tag(run_id, tag, system) values (?, ?, ?)",
                [(run_pk, t, 0) for t in tags] + [(run_pk, t, 1) for t in system_tags],
            )
        self._known_shas.update(b.sha for b in blobs)
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
        for rec in finished:
            self._known_shas.update(b.sha for b in rec.blobs)
            for blob in rec.blobs:
                blob.discard()
        return done, begun

    def store_blobs(self, blobs: list[codec.EncodedBlob]) -> None:
        """Commit blobs on their own: a task in its own process stores its large values
        before the runtime commits the task row that references them."""
        with self.write() as conn:
            for blob in blobs:
                self.put_blob(conn, blob)
        self._known_shas.update(b.sha for b in blobs)
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
        task_pk = int(cur.lastrowid)
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
        flow_name, step = self._flow_name(conn, rec.run_pk), rec.step
        conn.executemany(
            "insert into artifact_fts(rowid, name, flow, step, preview) values (?, ?, ?, ?, ?)",
            [
                (first_id + i, a.name, flow_name, step, a.preview)
                for i, a in enumerate(rec.artifacts)
                if searchable(a.name, a.inherited)
            ],
        )


# Tasks a run left running when it ended or died: they stopped without an outcome.
_CRASH_RUNNING_TASKS = (
    "update task set status = 'crashed', finished_at = ? where run_id = ? and status = 'running'"
)

# Blobs from this size on are read by incremental blob I/O rather than selected.
_BLOB_IO_FROM = 1024 * 1024


def _verify_sha(n_chunks: int) -> bool:
    """Loads check a blob against its SHA-256 when it is one chunk (the common, small case).
    Larger blobs are checked chunk by chunk by zstd's frame checksums and their exact sizes,
    at a fraction of the cost; `ledgerflow doctor` re-hashes every blob in full."""
    return n_chunks <= 1


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


def _write_error(path: Path, error: sqlite3.Error) -> LedgerError:
    text = str(error)
    if "full" in text:
        return LedgerError(f"the disk holding {path} is full; nothing was half-written. Free "
                           "some space, then `resume` the run")  # fmt: skip
    if "readonly" in text or "read-only" in text:
        return LedgerReadOnlyError(f"{path} cannot be written (read-only file or folder)")
    return LedgerError(f"cannot write to {path}: {text}")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=Ledger._finish_checkpoints,
                        after_in_child=Ledger._after_fork_in_child)  # fmt: skip
atexit.register(Ledger._finish_checkpoints)


class _Connections:
    """One SQLite connection per thread, in autocommit mode (Ledger.write() issues BEGIN
    itself), each set up with the ledger's pragmas; close_all() closes every thread's.

    (The schema is declared with peewee models, but peewee is imported only to create it:
    keeping it off this path saves every run its import time.)"""

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

    def close_all(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()

