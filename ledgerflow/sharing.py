"""Sharing ledgers: export runs to a new self-contained file, import (merge) another ledger.

Runs keep their ids (they are unique across ledgers). A blob is copied only if the target
lacks its SHA. Importing the same file twice changes nothing; a run whose id exists with
different content is reported as a conflict and never overwritten. Nothing is unpickled:
blobs are copied as stored bytes.

The source may be hostile. Before a single row is written, every blob the copy needs is
checked — its row's numbers (see blobstore.check_meta), its chunks present and whole, every
byte re-hashed against its SHA-256, its encoding matching its bytes — all inside one read
snapshot of the source; any failure refuses the whole copy with one line. Each copied run is
listed in the target's `imported_run` table, trusted only if the user trusted it where it
came from (trust_store.py); a copied run is never counted as live.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from . import codec, reads, writes
from .blobstore import check_meta
from .clock import now_iso
from .exceptions import CorruptBlobError, LedgerflowError, MetaflowInvalidPathspec, MetaflowNotFound
from .ledger import Ledger
from .location import existing_ledger
from .logstore import copy_logs
from .search_index import index_artifacts, index_task_text, searchable
from .structs import field, struct
from .tables import ARTIFACT, BLOB, RUN, TASK
from .trust_store import run_trusted

# What a copy carries of each row: every declared column (tables.py) but the keys it remaps.
_RUN_COLUMNS = RUN.names(exclude=("id", "flow_id"))
_TASK_COLUMNS = TASK.names(exclude=("id", "run_id"))
_ARTIFACT_COLUMNS = ARTIFACT.names(exclude=("id", "task_id"))


@struct
class CopyReport:
    """What an export or import did."""

    copied: list[str] = field(factory=list)  # pathspecs of runs written
    already_present: list[str] = field(factory=list)  # identical runs skipped
    conflicts: list[str] = field(factory=list)  # same id, different content
    blobs_copied: int = 0
    bytes_copied: int = 0


def resolve_runs(ledger: Ledger, pathspecs: list[str]) -> list[int]:
    """Run pks for 'Flow/RunId' (one run) or 'Flow' (all its runs) pathspecs."""
    pks: list[int] = []
    for spec in pathspecs:
        parts = [p for p in spec.strip("/").split("/")]
        if not spec.strip("/") or len(parts) > 2 or any(not p for p in parts):
            raise MetaflowInvalidPathspec(
                f"'{spec}' is not a flow or run pathspec; use 'Flow' or 'Flow/RunId'"
            )
        sql = "select r.id from run r join flow f on f.id = r.flow_id where f.name = ?"
        rows = ledger.execute(sql + (" and r.run_id = ?" if len(parts) == 2 else ""),
                              parts).fetchall()  # fmt: skip
        if not rows:
            raise MetaflowNotFound(f"{spec} does not exist in {ledger.path}")
        pks += [r[0] for r in rows if r[0] not in pks]
    return pks


def export_runs(pathspecs: list[str], to: str | os.PathLike[str], *,
                ledger: str | os.PathLike[str] | Ledger | None = None,
                progress: Callable[[int, int], None] | None = None) -> CopyReport:  # fmt: skip
    """Write the given runs (or whole flows), and only the blobs they use, to a new ledger."""
    source = ledger if isinstance(ledger, Ledger) else Ledger.open(ledger, reader=True)
    target_path = Path(to).absolute()
    if target_path.exists():
        raise LedgerflowError(f"{target_path} already exists; export to a new file")
    run_pks = resolve_runs(source, pathspecs)
    target = Ledger(target_path)
    try:
        return copy_runs(source, target, run_pks, progress)
    finally:
        target.close()


def import_ledger(path: str | os.PathLike[str], *,
                  ledger: str | os.PathLike[str] | Ledger | None = None,
                  progress: Callable[[int, int], None] | None = None) -> CopyReport:  # fmt: skip
    """Merge every run of the ledger file at `path` into this ledger."""
    source_path = existing_ledger(path, "check the path to import")
    target = ledger if isinstance(ledger, Ledger) else Ledger.open(ledger)
    if source_path == target.path:
        raise LedgerflowError(f"cannot import {source_path} into itself")
    source = Ledger(source_path, readonly=True)
    source.conn.execute("BEGIN")  # one snapshot: the rows checked are the rows copied
    try:
        refuse_bad_rows(source)  # before anything reads a value that may not be text
        if source.ledger_id and source.ledger_id == target.ledger_id:
            raise LedgerflowError(
                f"{source_path} is a copy of this very ledger ({target.path}); nothing to import"
            )
        run_pks = [r[0] for r in source.execute("select id from run order by created_at")]
        return copy_runs(source, target, run_pks, progress)
    finally:
        source.close()


def run_digest(ledger: Ledger, run_pk: int) -> str:
    """A fingerprint of a run's content: its tasks and their artifacts by SHA."""
    rows = ledger.execute(
        "select t.step, t.task_id, t.attempt, t.status, a.name, a.sha from task t "
        "left join artifact a on a.task_id = t.id where t.run_id = ? "
        "order by t.step, t.task_id, t.attempt, a.name",
        (run_pk,),
    )
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def copy_runs(source: Ledger, target: Ledger, run_pks: list[int],
              progress: Callable[[int, int], None] | None = None) -> CopyReport:  # fmt: skip
    """Copy runs from one open ledger to another, each run in one transaction, after
    checking every blob they need (nothing is written if one is damaged); `progress` is
    called with (runs done, runs in all) as they go."""
    report = CopyReport()
    conn = source.conn
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")  # one snapshot of the source: what is checked is what is copied
    try:
        check_blobs(source, _needed_blobs(source, target, run_pks))
        _check_labels(source, run_pks)
        for done, run_pk in enumerate(run_pks, 1):
            _copy_run(source, target, run_pk, report)
            if progress is not None:
                progress(done, len(run_pks))
    finally:
        if began and conn.in_transaction:
            conn.execute("COMMIT")
    return report


def _copy_run(source: Ledger, target: Ledger, run_pk: int, report: CopyReport) -> None:
    flow_name, run_id = source.execute(
        "select f.name, r.run_id from run r join flow f on f.id = r.flow_id where r.id = ?",
        (run_pk,),
    ).fetchone()
    pathspec = f"{flow_name}/{run_id}"
    trusted = run_trusted(source, run_pk)
    flow_pk = writes.ensure_flow(target, flow_name)
    with target.write() as conn:
        # Looked up under the write lock: a concurrent import of the same file has either
        # committed this run (then it is already present) or not started it.
        existing = conn.execute(
            "select r.id from run r where r.flow_id = ? and r.run_id = ?", (flow_pk, run_id)
        ).fetchone()
        if existing is None:
            new_run = _copy_one(source, target, conn, run_pk, flow_pk, flow_name, report)
            conn.execute(
                "insert into imported_run(run_id, source_ledger_id, imported_at, trusted) "
                "values (?, ?, ?, ?)",
                (new_run, source.ledger_id, now_iso(), int(trusted)),
            )
    if existing is None:
        report.copied.append(pathspec)
    elif run_digest(source, run_pk) == run_digest(target, existing[0]):
        report.already_present.append(pathspec)
    else:
        report.conflicts.append(pathspec)


def _needed_blobs(source: Ledger, target: Ledger, run_pks: list[int]) -> list[str]:
    """SHAs the runs reference that the target lacks."""
    shas: set[str] = set()
    for run_pk in run_pks:
        shas |= {r[0] for r in source.execute(
            "select a.sha from artifact a join task t on t.id = a.task_id where t.run_id = ? "
            "union select sha from s3_object where run_id = ?", (run_pk, run_pk))}  # fmt: skip
        if reads.has_card_table(source):  # cards' HTML blobs are checked like the rest
            shas |= {r[0] for r in source.execute(
                "select c.sha from card c join task t on t.id = c.task_id "
                "where t.run_id = ? and c.sha is not null", (run_pk,))}  # fmt: skip
    return sorted(
        sha
        for sha in shas
        if target.execute("select 1 from blob where sha = ?", (sha,)).fetchone() is None
    )


def check_blobs(source: Ledger, shas: list[str]) -> None:
    """Refuse (LedgerflowError, one line) unless every blob is whole and is what its SHA-256
    and its encoding say. Reads each blob once, keeping one chunk in memory at a time."""
    for sha in shas:
        try:
            row = source.execute(
                "select encoding, raw_size, n_chunks, chunk_size, codec from blob where sha = ?",
                (sha,),
            ).fetchone()
            if row is None:
                raise CorruptBlobError(f"blob {sha[:12]} is missing")
            why = check_meta(sha, *row)
            if why:
                raise CorruptBlobError(f"blob {sha[:12]} {why}")
            meta = source.blobs.meta(sha)
            source.blobs.verify(meta)
            _check_encoding(source, meta)
        except CorruptBlobError as e:
            raise LedgerflowError(
                f"refusing to copy from {source.path}, nothing was written: {e}"
            ) from None


def _check_encoding(source: Ledger, meta: Any) -> None:
    """A blob's bytes must be what its encoding says: a pickle starts with pickle's PROTO
    opcode, JSON is UTF-8 text that parses (so an artifact can never dedup onto a blob that
    decodes otherwise than it was written)."""
    head = next(source.blobs._frames(meta), b"")
    first = codec.decompress_chunk(head, meta.chunk_size)[:1] if meta.raw_size else b""
    if meta.encoding == codec.PICKLE and first != b"\x80":
        raise CorruptBlobError(f"blob {meta.sha[:12]} is labelled pickle but is not one")
    if meta.encoding == codec.JSON:
        if first == b"\x80":
            raise CorruptBlobError(f"blob {meta.sha[:12]} is labelled json but is a pickle")
        try:
            source.blobs.load(meta.sha, before_unpickle=_never)
        except (CorruptBlobError, LedgerflowError):
            raise CorruptBlobError(f"blob {meta.sha[:12]} is labelled json but is not") from None


def _check_labels(source: Ledger, run_pks: list[int]) -> None:
    """Every artifact's encoding label must be its blob's (a 'json' label on a pickle blob
    is how a pickle would pass for plain data)."""
    for run_pk in run_pks:
        bad = source.execute(
            "select a.name, a.encoding, b.encoding from artifact a join task t on t.id = "
            "a.task_id join blob b on b.sha = a.sha where t.run_id = ? and "
            "a.encoding is not b.encoding limit 1", (run_pk,)).fetchone()  # fmt: skip
        if bad:
            raise LedgerflowError(
                f"refusing to copy from {source.path}, nothing was written: artifact "
                f"'{bad[0]}' is labelled {bad[1]!r} but its blob is {bad[2]!r}; run "
                "`ledgerflow doctor` on it"
            )


def _never() -> None:
    raise CorruptBlobError("a pickle where JSON was expected")


def _copy_one(source: Ledger, target: Ledger, conn: sqlite3.Connection, run_pk: int,
              flow_pk: int, flow_name: str, report: CopyReport) -> int:  # fmt: skip
    cols = ", ".join(_RUN_COLUMNS)
    row = source.execute(f"select {cols} from run where id = ?", (run_pk,)).fetchone()
    new_run = conn.execute(
        f"insert into run(flow_id, {cols}) values (?, {', '.join('?' * len(_RUN_COLUMNS))})",
        (flow_pk, *row),
    ).lastrowid
    for tag, system in source.execute("select tag, system from tag where run_id = ?", (run_pk,)):
        conn.execute("insert into tag(run_id, tag, system) values (?, ?, ?)",
                     (new_run, tag, system))  # fmt: skip
    # Blobs first (foreign keys), copied only when the SHA is new here.
    shas = {r[0] for r in source.execute(
        "select a.sha from artifact a join task t on t.id = a.task_id where t.run_id = ? "
        "union select sha from s3_object where run_id = ?", (run_pk, run_pk))}  # fmt: skip
    for sha in sorted(shas):
        _copy_blob(source, conn, sha, report)
    task_map: dict[int, int] = {}
    tcols = ", ".join(_TASK_COLUMNS)
    for old_id, *values in source.execute(
        f"select id, {tcols} from task where run_id = ? order by id", (run_pk,)
    ).fetchall():
        task_map[old_id] = cast(
            int,
            conn.execute(
                f"insert into task(run_id, {tcols}) values (?, {', '.join('?' * len(values))})",
                (new_run, *values),
            ).lastrowid,
        )  # set by the insert
    for task_id, parent_id in source.execute(
        "select tp.task_id, tp.parent_id from task_parent tp join task t on t.id = tp.task_id "
        "where t.run_id = ?", (run_pk,)).fetchall():  # fmt: skip
        if task_id in task_map and parent_id in task_map:
            conn.execute("insert into task_parent(task_id, parent_id) values (?, ?)",
                         (task_map[task_id], task_map[parent_id]))  # fmt: skip
    if reads.has_card_table(source) and reads.has_card_table(target):
        pks = list(task_map)
        cards = [
            c for i in range(0, len(pks), 500) for c in reads.card_rows(source, pks[i : i + 500])
        ]
        for sha in {c["sha"] for c in cards if c["sha"]}:
            _copy_blob(source, conn, sha, report)
        writes.copy_card_rows(conn, cards, task_map)
    _copy_reuse_keys(source, conn, run_pk, int(new_run or 0), task_map)
    acols = ", ".join(_ARTIFACT_COLUMNS)
    next_id = writes.next_artifact_id(conn)
    for old_task, new_task in task_map.items():
        step = conn.execute("select step from task where id = ?", (new_task,)).fetchone()[0]
        for values in source.execute(f"select {acols} from artifact where task_id = ?",
                                     (old_task,)).fetchall():  # fmt: skip
            conn.execute(
                f"insert into artifact(id, task_id, {acols}) values (?, ?, "
                f"{', '.join('?' * len(values))})",
                (next_id, new_task, *values),
            )
            name, sha, inherited = values[0], values[1], values[6]
            if searchable(name, inherited):
                (preview,) = conn.execute("select preview from blob where sha = ?",
                                          (sha,)).fetchone()  # fmt: skip
                index_artifacts(conn, [(next_id, name, inherited, flow_name, step, preview)])
            next_id += 1
        copy_logs(source.conn, conn, old_task, new_task)  # logstore: pieces, indexed
        index_task_text(conn, new_task)
    for key, sha, encoding, size, created in source.execute(
        "select key, sha, encoding, size, created_at from s3_object where run_id = ?", (run_pk,)
    ).fetchall():
        conn.execute(
            "insert into s3_object(run_id, key, sha, encoding, size, created_at) "
            "values (?, ?, ?, ?, ?, ?)",
            (new_run, key, sha, encoding, size, created),
        )
    return int(new_run or 0)


def _copy_blob(source: Ledger, conn: sqlite3.Connection, sha: str, report: CopyReport) -> None:
    if conn.execute("select 1 from blob where sha = ?", (sha,)).fetchone():
        return
    cols = ", ".join(BLOB.names(exclude=()))
    row = source.execute(f"select {cols} from blob where sha = ?", (sha,)).fetchone()
    if row is None:
        raise LedgerflowError(
            f"blob {sha[:12]} is missing from {source.path}; run `ledgerflow doctor` on it"
        )
    conn.execute(f"insert into blob({cols}) values ({', '.join('?' * len(row))})", row)
    n_chunks = row[6]
    for seq in range(n_chunks):  # one chunk in memory at a time
        (data,) = source.execute(
            "select data from blob_chunk where sha = ? and seq = ?", (sha, seq)
        ).fetchone()
        conn.execute("insert into blob_chunk(sha, seq, data) values (?, ?, ?)", (sha, seq, data))
        report.bytes_copied += len(data)
    report.blobs_copied += 1


# -- what trust binds to (trust_store.py, trust_sources.py) ---------------------------------


def imported_runs(ledger: Ledger, source: str | None = None) -> list[dict[str, Any]]:
    """The runs `import`/`export` copied into this ledger (of one source ledger id, or all):
    pk, pathspec, source, imported_at, trusted; by import time."""
    try:
        rows = ledger.execute(
            "select i.run_id, f.name, r.run_id, coalesce(i.source_ledger_id, ''), "
            "i.imported_at, i.trusted from imported_run i join run r on r.id = i.run_id "
            "join flow f on f.id = r.flow_id where ? is null or coalesce(i.source_ledger_id, "
            "'') = ? order by i.imported_at, i.run_id", (source, source)).fetchall()  # fmt: skip
    except sqlite3.OperationalError:  # no imported_run table: nothing was imported
        return []
    return [{"pk": pk, "pathspec": f"{flow}/{run_id}", "source": src, "imported_at": at,
             "trusted": bool(trusted)} for pk, flow, run_id, src, at, trusted in rows]  # fmt: skip


# -- rows a received file must hold (row_checks.py) -----------------------------------------


def refuse_bad_rows(source: Ledger) -> None:
    """Refuse (one line, naming table, column and rows) a file whose rows are not what the
    schema says: a wrong storage type, text that is not UTF-8, a timestamp malformed or
    later than now (an imported run must not become every flow's latest)."""
    from .row_checks import row_problems

    problems = row_problems(source.conn, per_column=1)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LedgerflowError(
            f"refusing to copy from {source.path}, nothing was written: {problems[0]}{more}; "
            "run `ledgerflow doctor` on it"
        )


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _copy_reuse_keys(source: Ledger, conn: sqlite3.Connection, run_pk: int, new_run: int,
                     task_map: dict[int, int]) -> None:  # fmt: skip
    """The run's reuse keys (taskreuse.py), so `run --reuse` can reuse its tasks here once
    their source is trusted. A ledger from before keys has none; a malformed row is left out
    (a key only ever matches a task of a trusted run, so a planted key cannot be used)."""
    tables = {r[0] for r in source.execute("select name from sqlite_master where type = 'table'")}
    if not {"task_key", "step_code"} <= tables:
        return
    for task_pk, key, code, inputs, env in source.execute(
        "select k.task_pk, k.key, k.code, k.inputs, k.env from task_key k"
        " join task t on t.id = k.task_pk where t.run_id = ?", (run_pk,)).fetchall():  # fmt: skip
        if (
            task_pk in task_map
            and all(isinstance(v, str) and _HEX64.fullmatch(v) for v in (key, code, inputs))
            and isinstance(env, str)
        ):
            conn.execute("insert into task_key(task_pk, key, code, inputs, env)"
                         " values (?, ?, ?, ?, ?)", (task_map[task_pk], key, code, inputs, env))  # fmt: skip
    for step, code, parts in source.execute(
        "select step, code, parts from step_code where run_pk = ?", (run_pk,)).fetchall():  # fmt: skip
        if isinstance(step, str) and isinstance(code, str) and isinstance(parts, str):
            conn.execute("insert or ignore into step_code(run_pk, step, code, parts)"
                         " values (?, ?, ?, ?)", (new_run, step, code, parts))  # fmt: skip
