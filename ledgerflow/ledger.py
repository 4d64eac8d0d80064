"""Opening a ledger file, and guarding it: one `Ledger` per file per process, its pragmas
and connections (one per thread, `connections.py`), telling what the file is before anything
changes in it (foreign files and planted objects refused, `identify.py`), running the missing
migrations (`schema.py`), marking the runs of dead processes crashed, and keeping the WAL
small (checkpoints at close and in the background, `checkpointer.py`).

What is written is not here: `writes.py` holds every write statement and the one
transaction policy (`Ledger.write()` is its door, refusing when the file is read-only or
gone); `reads.py` every read; `blobstore.py` the values (`ledger.blobs`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import codec, writes
from .blobstore import BlobStore
from .checkpointer import Checkpointer, checkpoint_and_shrink
from .clock import now_iso
from .connections import (
    BUSY_TIMEOUT_MS,
    Connections,
    _gone,
    _uri_path,
    readonly_target,
    switch_to_wal,
    warn_stale,
)
from .exceptions import LedgerError, LedgerReadOnlyError, LedgerSchemaError
from .identify import CORE_TABLES, refuse_unversioned, table_names, unknown_objects, unreadable
from .liveness import run_is_dead
from .location import resolve_ledger_path
from .schema import MIGRATIONS, OUR_TABLES, SCHEMA_VERSION
from .trust_file import record_own

# A WAL file bigger than this is shrunk back to it when it starts over (and at close, see
# checkpointer.checkpoint_and_shrink).
WAL_SIZE_LIMIT = 64 << 20
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
        if not cls._open and not _writers.data:  # type: ignore[attr-defined]
            # Nothing open (a task forked from the fork server): nothing to set aside, no
            # WeakSet to copy (its iteration is Python code each task would run and write
            # to: measured, ~50 page faults a task), and the lock, unless another thread
            # held it at the fork, is a free lock here too (setting a class attribute would
            # reset the class's entries in the method cache: more page faults).
            if cls._open_lock.locked():
                cls._open_lock = threading.Lock()
            return
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
            target, self.stale = readonly_target(self.path)
            if self.stale:
                warn_stale(self.path)
            return Connections(target, uri=True, pragmas=pragmas, path=self.path)
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
        pragmas = [("page_size", 8192), *pragmas, ("synchronous", "normal"),
                   ("foreign_keys", 1), ("journal_size_limit", WAL_SIZE_LIMIT)]  # fmt: skip
        if os.environ.get(MAX_PAGES_ENV):
            # Test hook: a file that cannot grow past N pages behaves like a full disk.
            pragmas.append(("max_page_count", int(os.environ[MAX_PAGES_ENV])))
        # The first connection may create the file; later ones (other threads) must find it,
        # never make a new empty one where a ledger was deleted or moved mid-run.
        base = f"file:{_uri_path(self.path)}?mode="
        return Connections(base + ("rw" if self._task else "rwc"), uri=True, pragmas=pragmas,
                           path=self.path, then=base + "rw")  # fmt: skip

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
                        writes.init_meta(conn)
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
        refuse_unversioned(self.path, version, names)

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
        with writes.transaction(self.conn, self.path, self.blobs,
                                self.checkpointer.request) as conn:  # fmt: skip
            yield conn

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

        def restart_wal() -> None:
            with self.write() as conn:
                writes.set_meta(conn, "wal_reset_at", now_iso())

        with contextlib.suppress(sqlite3.Error, LedgerError):
            checkpoint_and_shrink(self.conn, self.path, restart_wal, WAL_SIZE_LIMIT)

    @classmethod
    def _checkpoint_at_exit(cls) -> None:
        cls._finish_checkpoints()
        for ledger in list(_writers):
            ledger.checkpoint_before_close()

    def mark_crashed_runs(self) -> list[str]:
        """Runs left 'running' by a process that is gone become 'crashed' (done on open).
        Returns their pathspecs."""
        rows = writes.running_runs(self.conn)
        dead = [(pk, spec) for pk, spec, host, pid, beat in rows if run_is_dead(host, pid, beat)]
        if dead:
            with self.write() as conn:
                writes.end_runs(conn, [pk for pk, _ in dead], "crashed", only_running=True)
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

    # -- values (`blobs`, see blobstore.py, does the rest) ---------------------------------

    def read_raw(self, sha: str) -> tuple[str, bytes | bytearray]:
        """(encoding, raw bytes) of a blob, verified against its SHA-256."""
        return self.blobs.read_raw(sha)

    def load(self, sha: str, before_unpickle: Callable[[], None] | None = None) -> Any:
        """The value stored under a SHA, as a fresh object, verified before it is decoded;
        `before_unpickle` (a trust check) runs first when the blob is a pickle."""
        return self.blobs.load(sha, before_unpickle)


def chunk_size_setting() -> int:
    """$LEDGERFLOW_CHUNK_SIZE, else the default; never past what readers accept."""
    from .blobstore import MAX_CHUNK_SIZE

    text = os.environ.get(CHUNK_SIZE_ENV) or str(codec.DEFAULT_CHUNK_SIZE)
    if not text.isdigit() or not 1024 <= int(text) <= MAX_CHUNK_SIZE:
        raise LedgerError(f"{CHUNK_SIZE_ENV}={text!r} is not a chunk size; give bytes between "
                          f"1024 and {MAX_CHUNK_SIZE}, or unset it")  # fmt: skip
    return int(text)


_writers = weakref.WeakSet()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=Ledger._finish_checkpoints,
                        after_in_child=Ledger._after_fork_in_child)  # fmt: skip
atexit.register(Ledger._checkpoint_at_exit)
