"""Sharing ledgers: export runs to a new self-contained file, import (merge) another ledger.

Runs keep their ids (they are unique across ledgers). A blob is copied only if the target
lacks its SHA. Importing the same file twice changes nothing; a run whose id exists with
different content is reported as a conflict and never overwritten. Nothing is unpickled:
blobs are copied as stored bytes.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cards.storage import copy_card_rows
from .exceptions import LedgerflowError, MetaflowInvalidPathspec, MetaflowNotFound
from .fulltext import index_task_text
from .ledger import Ledger
from .schema import searchable

_RUN_COLUMNS = (
    "run_id", "status", "created_at", "finished_at", "params", "user", "host", "pid",
    "heartbeat_at", "script_name", "code", "origin_run_id", "python_version",
    "ledgerflow_version", "machine_id", "graph_info",
)  # fmt: skip
_TASK_COLUMNS = (
    "step", "task_id", "attempt", "status", "started_at", "finished_at", "foreach_index",
    "foreach_stack", "exception_type", "exception", "traceback", "origin_pathspec", "transition", "host",
)  # fmt: skip
_ARTIFACT_COLUMNS = ("name", "sha", "encoding", "type", "size", "value", "inherited")


@dataclass
class CopyReport:
    """What an export or import did."""

    copied: list[str] = field(default_factory=list)  # pathspecs of runs written
    already_present: list[str] = field(default_factory=list)  # identical runs skipped
    conflicts: list[str] = field(default_factory=list)  # same id, different content
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
    source = ledger if isinstance(ledger, Ledger) else Ledger.open(ledger)
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
    source_path = Path(path).absolute()
    if not source_path.exists():
        raise LedgerflowError(f"no ledger at {source_path}; check the path to import")
    target = ledger if isinstance(ledger, Ledger) else Ledger.open(ledger)
    if source_path == target.path:
        raise LedgerflowError(f"cannot import {source_path} into itself")
    source = Ledger(source_path, readonly=True)
    try:
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
    """Copy runs from one open ledger to another, each run in one transaction; `progress`
    is called with (runs done, runs in all) after each."""
    report = CopyReport()
    for done, run_pk in enumerate(run_pks, 1):
        if progress is not None and done > 1:
            progress(done - 1, len(run_pks))
        flow_name, run_id = source.execute(
            "select f.name, r.run_id from run r join flow f on f.id = r.flow_id where r.id = ?",
            (run_pk,),
        ).fetchone()
        pathspec = f"{flow_name}/{run_id}"
        existing = target.execute(
            "select r.id from run r join flow f on f.id = r.flow_id "
            "where f.name = ? and r.run_id = ?",
            (flow_name, run_id),
        ).fetchone()
        if existing is not None:
            same = run_digest(source, run_pk) == run_digest(target, existing[0])
            (report.already_present if same else report.conflicts).append(pathspec)
            continue
        flow_pk = target.ensure_flow(flow_name)
        with target.write() as conn:
            _copy_one(source, target, conn, run_pk, flow_pk, flow_name, report)
        report.copied.append(pathspec)
    if progress is not None and run_pks:
        progress(len(run_pks), len(run_pks))
    return report


def _copy_one(source: Ledger, target: Ledger, conn: sqlite3.Connection, run_pk: int,
              flow_pk: int, flow_name: str, report: CopyReport) -> None:  # fmt: skip
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
        task_map[old_id] = conn.execute(
            f"insert into task(run_id, {tcols}) values (?, {', '.join('?' * len(values))})",
            (new_run, *values),
        ).lastrowid
    for task_id, parent_id in source.execute(
        "select tp.task_id, tp.parent_id from task_parent tp join task t on t.id = tp.task_id "
        "where t.run_id = ?", (run_pk,)).fetchall():  # fmt: skip
        if task_id in task_map and parent_id in task_map:
            conn.execute("insert into task_parent(task_id, parent_id) values (?, ?)",
                         (task_map[task_id], task_map[parent_id]))  # fmt: skip
    copy_card_rows(source, conn, task_map, lambda sha: _copy_blob(source, conn, sha, report))
    acols = ", ".join(_ARTIFACT_COLUMNS)
    next_id = Ledger._next_artifact_id(conn)
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
                conn.execute(
                    "insert into artifact_fts(rowid, name, flow, step, preview) "
                    "values (?, ?, ?, ?, ?)",
                    (next_id, name, flow_name, step, preview),
                )
            next_id += 1
        for stream, text in source.execute("select stream, text from log where task_id = ?",
                                           (old_task,)).fetchall():  # fmt: skip
            conn.execute("insert into log(task_id, stream, text) values (?, ?, ?)",
                         (new_task, stream, text))  # fmt: skip
        index_task_text(conn, new_task)
    for key, sha, encoding, size, created in source.execute(
        "select key, sha, encoding, size, created_at from s3_object where run_id = ?", (run_pk,)
    ).fetchall():
        conn.execute(
            "insert into s3_object(run_id, key, sha, encoding, size, created_at) "
            "values (?, ?, ?, ?, ?, ?)",
            (new_run, key, sha, encoding, size, created),
        )


def _copy_blob(source: Ledger, conn: sqlite3.Connection, sha: str, report: CopyReport) -> None:
    if conn.execute("select 1 from blob where sha = ?", (sha,)).fetchone():
        return
    cols = "sha, codec, encoding, raw_size, stored_size, chunk_size, n_chunks, python_version, " \
           "created_at, preview"
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
