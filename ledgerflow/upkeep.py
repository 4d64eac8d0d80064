"""Keeping a ledger healthy: rm, gc, doctor and stats.

- `rm` deletes runs (never one still running) with their tasks, artifacts and logs; blobs
  stay until `gc`.
- `gc` deletes blobs nothing references any more, then VACUUMs. It refuses while a run is
  in progress, since that run may reuse a blob it has seen (deduplication) before committing.
- `doctor` checks SQLite's integrity, re-hashes every blob, looks for dangling references,
  runs left 'running' by a dead process, and the search index; `repair=True` fixes what is
  safe to fix (crashed runs, the search index). It never unpickles.
- `stats` counts and sizes: logical bytes (what artifacts would take un-deduplicated and
  uncompressed) against stored bytes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from .clock import stored_iso
from .exceptions import CorruptBlobError, LedgerflowError
from .identify import JSON_COLUMNS, unknown_objects
from .ledger import Ledger
from .liveness import run_is_dead
from .logstore import index_problems as log_index_problems
from .logstore import log_figures
from .row_checks import row_problems
from .search_index import artifact_index_problems, forget_run, task_index_counts
from .search_index import rebuild as rebuild_search_indexes
from .sharing import resolve_runs
from .structs import field, struct


def running_runs(ledger: Ledger) -> list[tuple[int, str]]:
    """(pk, pathspec) of runs marked running that may still be running."""
    return [(pk, spec) for pk, spec, dead in _running(ledger) if not dead]


def _running(ledger: Ledger, conn: Any = None) -> list[tuple[int, str, bool]]:
    """(pk, pathspec, dead) of runs marked running. A run copied in by import/export is
    never live, whatever its host, pid and heartbeat say (they came with the file)."""
    rows = (
        (conn or ledger)
        .execute(
            "select r.id, f.name || '/' || r.run_id, r.host, r.pid, r.heartbeat_at, "
            "exists (select 1 from imported_run i where i.run_id = r.id) from run r "
            "join flow f on f.id = r.flow_id where r.status = 'running'"
        )
        .fetchall()
    )
    return [(pk, spec, bool(copied) or run_is_dead(host, pid, beat))
            for pk, spec, host, pid, beat, copied in rows]  # fmt: skip


# -- rm ----------------------------------------------------------------------------------


def rm(
    ledger: Ledger,
    pathspecs: list[str],
    older_than: str | datetime | None = None,
    keep: int | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Delete runs: 'Flow/RunId' ones, or a flow's runs older than a date / beyond the
    newest `keep`. Returns the deleted pathspecs (with dry_run=True, the ones it would
    delete, deleting nothing). Running runs are refused."""
    pks = resolve_runs(ledger, pathspecs)
    if older_than is not None or keep is not None:
        pks = _filter_runs(ledger, pks, older_than, keep)
    alive = {pk: spec for pk, spec in running_runs(ledger)}
    busy = [alive[pk] for pk in pks if pk in alive]
    if busy:
        raise LedgerflowError(
            f"{busy[0]} is still running; wait for it to finish (or kill it) before rm"
        )
    names = dict(ledger.execute(
        "select r.id, f.name || '/' || r.run_id from run r join flow f on f.id = r.flow_id"
    ).fetchall())  # fmt: skip
    if dry_run:
        return [names[pk] for pk in pks]
    with ledger.write() as conn:
        for pk in pks:
            forget_run(conn, pk)  # the search indexes are virtual tables: no cascade
            conn.execute("delete from run where id = ?", (pk,))
    return [names[pk] for pk in pks]


def _filter_runs(ledger: Ledger, pks: list[int], older_than: Any, keep: int | None) -> list[int]:
    rows = ledger.execute(
        f"select id, flow_id, created_at from run where id in ({','.join('?' * len(pks))}) "
        "order by created_at desc",
        pks,
    ).fetchall()
    chosen = []
    seen_per_flow: dict[int, int] = {}
    cutoff = _iso(older_than) if older_than is not None else None
    for pk, flow_pk, created in rows:
        seen_per_flow[flow_pk] = seen_per_flow.get(flow_pk, 0) + 1
        beyond = keep is not None and seen_per_flow[flow_pk] > keep
        old = cutoff is not None and created < cutoff
        if (keep is None or beyond) and (cutoff is None or old):
            chosen.append(pk)
    return chosen


def _iso(value: str | datetime) -> str:
    try:
        return stored_iso(value)
    except ValueError:
        raise LedgerflowError(f"{value!r} is not a date; use ISO form like 2026-11-01") from None


def freeable(ledger: Ledger, without: Sequence[str] = ()) -> tuple[int, int]:
    """(blobs, stored bytes) that gc would delete once the runs `without` (pathspecs, as
    rm returns them) are gone: blobs no artifact or s3 object of any other run uses."""
    pks = resolve_runs(ledger, list(without)) if without else []
    marks = ",".join("?" * len(pks))
    other = f" where t.run_id not in ({marks})" if pks else ""
    other_s3 = f" where run_id not in ({marks})" if pks else ""
    count, size = ledger.execute(
        "select count(*), coalesce(sum(stored_size), 0) from blob where sha not in "
        f"(select a.sha from artifact a join task t on t.id = a.task_id{other}) and sha not in "
        f"(select sha from s3_object{other_s3})",
        [*pks, *pks],
    ).fetchone()
    return int(count), int(size)


# -- gc ----------------------------------------------------------------------------------


@struct
class GcReport:
    blobs_deleted: int
    bytes_freed: int  # file size before minus after


def gc(ledger: Ledger) -> GcReport:
    """Delete blobs no artifact or s3 object references, then reclaim the space.

    A run stores blobs before anything references them (its IncludeFiles when it is
    created; a task's values just before its row), so gc never deletes while a run is live.
    The check is made inside gc's own write transaction: no run can be created, nor a task
    commit, between the check and the delete."""
    if ledger.readonly:
        ledger = Ledger.open(ledger.path, readonly=False)
    before = _file_size(ledger)
    # artifact.sha has no index: checking each deleted blob's foreign key would scan the
    # artifact table once per blob. The delete below only takes unreferenced blobs.
    # (foreign_keys only changes outside a transaction; write() uses this same connection.)
    ledger.execute("pragma foreign_keys = off")
    try:
        count = _delete_unreferenced(ledger)
    finally:
        ledger.execute("pragma foreign_keys = on")
    ledger.blobs.forget_known()
    ledger.execute("pragma wal_checkpoint(truncate)")
    # VACUUM rewrites the whole file (minutes for a GB): only when there is space to take
    # back, i.e. blobs were deleted now or free pages are left from earlier deletes.
    if count or ledger.execute("pragma freelist_count").fetchone()[0]:
        ledger.execute("vacuum")
        ledger.execute("pragma wal_checkpoint(truncate)")
    return GcReport(count, max(0, before - _file_size(ledger)))


def _delete_unreferenced(ledger: Ledger) -> int:
    with ledger.write() as conn:
        busy = [spec for _, spec, dead in _running(ledger, conn) if not dead]
        if busy:
            raise LedgerflowError(
                f"{len(busy)} run(s) in progress (e.g. {busy[0]}); run gc when they finish"
            )
        unreferenced = (
            "select sha from blob where sha not in (select sha from artifact) "
            "and sha not in (select sha from s3_object) "
            "and sha not in (select sha from card where sha is not null)"
        )
        # Found once (the NOT INs read every artifact row: seconds at 100k runs), then
        # deleted by primary key; nothing to delete costs that one read only.
        conn.execute(f"create temp table gc_unreferenced as {unreferenced}")
        try:
            count = conn.execute("select count(*) from temp.gc_unreferenced").fetchone()[0]
            if count:
                conn.execute("delete from blob_chunk where sha in "
                             "(select sha from temp.gc_unreferenced)")  # fmt: skip
                conn.execute("delete from blob where sha in (select sha from temp.gc_unreferenced)")
        finally:
            conn.execute("drop table temp.gc_unreferenced")
    return int(count)


def _file_size(ledger: Ledger) -> int:
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(f"{ledger.path}{suffix}")
        except OSError:
            pass
    return total


# -- doctor ------------------------------------------------------------------------------


@struct
class DoctorReport:
    problems: list[str] = field(factory=list)
    repaired: list[str] = field(factory=list)
    blobs_checked: int = 0
    damaged_blobs: dict[str, list[str]] = field(factory=dict)  # sha -> who uses it

    @property
    def healthy(self) -> bool:
        return not self.problems


def doctor(
    ledger: Ledger,
    repair: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DoctorReport:
    """Check the ledger; with repair=True fix what is safe to fix."""
    report = DoctorReport()
    integrity = [r[0] for r in ledger.execute("pragma integrity_check")]
    if integrity != ["ok"]:
        report.problems += [f"sqlite integrity: {line}" for line in integrity[:20]]
    fk = ledger.execute("pragma foreign_key_check").fetchall()
    for table, rowid, parent, _ in fk[:20]:
        report.problems.append(f"dangling reference: {table} row {rowid} points to a missing "
                               f"{parent}")  # fmt: skip
    _check_schema(ledger, report)
    report.problems += [f"rows: {problem}" for problem in row_problems(ledger.conn)]
    # A text value that is not UTF-8 cannot be read at all (reported just above): the checks
    # that would read one say they could not run rather than stop the report.
    _unless_undecodable(report, "JSON columns", lambda: _check_json_columns(ledger, report))
    _unless_undecodable(report, "blobs", lambda: _check_blobs(ledger, report, progress))
    _unless_undecodable(report, "running runs", lambda: _check_running(ledger, report))
    _unless_undecodable(report, "search index", lambda: _check_search_index(ledger, report))
    if repair and report.problems:
        _repair(ledger, report)
    return report


def _unless_undecodable(report: DoctorReport, what: str, check: Callable[[], None]) -> None:
    try:
        check()
    except sqlite3.OperationalError as e:
        if "decode" not in str(e):
            raise
        report.problems.append(f"{what}: not checked, a value it reads is not valid UTF-8")


def _check_running(ledger: Ledger, report: DoctorReport) -> None:
    for _, spec, dead in _running(ledger):
        if dead:
            report.problems.append(f"run {spec} was left running by a dead process")


def _check_blobs(ledger: Ledger, report: DoctorReport,
                 progress: Callable[[int, int], None] | None) -> None:  # fmt: skip
    """Re-hash every blob, one chunk in memory at a time, bounded by the blob's checked
    chunk sizes (never by a size the file claims: see blobstore.py)."""
    total = ledger.execute("select count(*) from blob").fetchone()[0]
    shas = [r[0] for r in ledger.execute("select sha from blob order by sha").fetchall()]
    for i, sha in enumerate(shas, 1):
        try:
            ledger.blobs.verify(ledger.blobs.meta(sha))
        except CorruptBlobError as e:
            users = blob_users(ledger, sha)
            report.damaged_blobs[sha] = users
            used = f"; used by {', '.join(users)}" if users else "; used by no run"
            report.problems.append(
                f"blob {str(sha)[:12]} is damaged: {_why(e, str(sha), ledger)}{used}"
            )
        report.blobs_checked = i
        if progress is not None:
            progress(i, total)
    missing = ledger.execute(
        "select count(*) from artifact where sha not in (select sha from blob)"
    ).fetchone()[0]
    if missing:
        report.problems.append(f"{missing} artifact(s) reference a missing blob")
    # The encoding decides whether loading unpickles: an artifact whose label differs from
    # its blob's is how a pickle would pass for plain data.
    for name, label, actual, pathspec in ledger.execute(
        "select a.name, a.encoding, b.encoding, f.name || '/' || r.run_id || '/' || t.step "
        "|| '/' || t.task_id from artifact a join blob b on b.sha = a.sha join task t on "
        "t.id = a.task_id join run r on r.id = t.run_id join flow f on f.id = r.flow_id "
        "where a.encoding is not b.encoding limit 20"
    ):
        report.problems.append(f"artifact {pathspec}/{name} is labelled {label!r} but its "
                               f"blob is {actual!r}")  # fmt: skip


def _why(error: CorruptBlobError, sha: str, ledger: Ledger) -> str:
    """The reason in a blob error, without the blob's name, path and advice around it."""
    text = str(error).removeprefix(f"blob {sha[:12]} in {ledger.path} ")
    return text.split(" (the file is damaged)")[0].split("; run `ledgerflow doctor`")[0]


def _check_json_columns(ledger: Ledger, report: DoctorReport) -> None:
    for table, column in JSON_COLUMNS:
        bad = ledger.execute(f"select count(*) from {table} where {column} is not null and "
                             f"json_valid({column}) = 0").fetchone()[0]  # fmt: skip
        if bad:
            report.problems.append(f"{bad} {table} row(s) hold malformed JSON in {column}")


def _check_schema(ledger: Ledger, report: DoctorReport) -> None:
    version = ledger.execute("pragma user_version").fetchone()[0]
    for name in unknown_objects(ledger.conn, version):
        report.problems.append(f"schema: {name} was not created by ledgerflow (a trigger runs "
                               "on writes, a view on reads: writers refuse this file; drop it "
                               "with sqlite3 if it is yours)")  # fmt: skip


def blob_users(ledger: Ledger, sha: str) -> list[str]:
    """Pathspecs of what uses a blob: the artifacts that produced it (not the tasks that
    passed it on) and the S3 objects ('Flow/RunId s3:key')."""
    artifacts = [r[0] for r in ledger.execute(
        "select pathspec from artifacts where sha = ? order by pathspec", (sha,))]  # fmt: skip
    objects = [f"{r[0]} s3:{r[1]}" for r in ledger.execute(
        "select f.name || '/' || r.run_id, o.key from s3_object o join run r on r.id = o.run_id "
        "join flow f on f.id = r.flow_id where o.sha = ? order by 1, 2", (sha,))]  # fmt: skip
    return artifacts + objects


def _check_search_index(ledger: Ledger, report: DoctorReport) -> None:
    report.problems += artifact_index_problems(ledger.conn)
    report.problems += log_index_problems(ledger.conn)
    indexed, expected = task_index_counts(ledger.conn)
    if indexed != expected:
        report.problems.append(f"search index has {indexed} entries for {expected} task logs "
                               "and exceptions")  # fmt: skip


def _repair(ledger: Ledger, report: DoctorReport) -> None:
    crashed = ledger.mark_crashed_runs()
    report.repaired += [f"marked {spec} as crashed" for spec in crashed]
    if any(p.startswith("search index") for p in report.problems):
        report.repaired.append(_rebuild_search_index(ledger))


# -- stats ---------------------------------------------------------------------------------


STATS_TIMEOUT = 120.0  # seconds: a hostile view must not make stats hang
# A size as stats adds it: integers only (a received file may hold text there; `doctor`
# reports it), summed with total(), which cannot overflow as sum() does.
_INTEGER_SIZE = "case when typeof(size) = 'integer' then size end"


def stats(ledger: Ledger, largest: int = 10) -> dict[str, Any]:
    """Counts and sizes, overall and per flow. Plain data, ready for JSON."""
    from .query import time_limit

    with time_limit(ledger.conn, STATS_TIMEOUT):
        return _with_logs(ledger, _stats(ledger, largest))


def _stats(ledger: Ledger, largest: int) -> dict[str, Any]:
    # Artifact figures come from one pass over the artifact table (the one that grows:
    # ten rows a run and more); the rest from indexes or small tables. At 100k runs this
    # took 2.9 s of CPU as one query per figure, joining every row to its flow; now 1.3 s.
    def one(sql: str) -> Any:
        return ledger.execute(sql).fetchone()

    flows = {pk: name for pk, name in ledger.execute("select id, name from flow")}
    runs_of = dict(ledger.execute("select flow_id, count(*) from run group by flow_id").fetchall())
    tasks_of = dict(ledger.execute(
        "select r.flow_id, count(*) from task t join run r on r.id = t.run_id "
        "group by r.flow_id").fetchall())  # fmt: skip
    bytes_of: dict[int, int] = {}
    artifacts = 0
    for flow_pk, n, size in ledger.execute(
        "select r.flow_id, sum(x.n), total(x.size) from (select task_id, count(*) as n, "
        f"total({_INTEGER_SIZE}) as size from artifact group by task_id) x "
        "join task t on t.id = x.task_id join run r on r.id = t.run_id group by r.flow_id"
    ):  # fmt: skip
        bytes_of[flow_pk] = int(size or 0)
        artifacts += int(n)
    logical = sum(bytes_of.values()) + int(one(f"select total({_INTEGER_SIZE}) from s3_object")[0])
    runs, tasks = sum(runs_of.values()), sum(tasks_of.values())
    blobs, raw, stored = one(
        "select count(*), cast(total(raw_size) as integer), cast(total(stored_size) as integer) "
        "from blob"
    )
    per_flow = [
        {"flow": name, "runs": runs_of.get(pk, 0), "tasks": tasks_of.get(pk, 0),
         "artifact_bytes": bytes_of.get(pk, 0)}
        for pk, name in sorted(flows.items(), key=lambda item: item[1])
    ]  # fmt: skip
    # The largest from the artifact table alone, then the few winners joined for their
    # pathspecs (ordering the `artifacts` view sorted every row with its joins: 2.8 s).
    top_ids = [row[0] for row in ledger.execute(
        "select id from artifact where inherited = 0 and typeof(size) = 'integer' "
        "order by size desc, id limit ?",
        (largest,))]  # fmt: skip
    top = []
    if top_ids:
        marks = ",".join("?" * len(top_ids))
        top = [
            {"pathspec": r[0], "size": r[1], "type": r[2]}
            for r in ledger.execute(
                "select f.name || '/' || r.run_id || '/' || t.step || '/' || t.task_id || '/' "
                "|| a.name, a.size, a.type from artifact a join task t on t.id = a.task_id "
                "join run r on r.id = t.run_id join flow f on f.id = r.flow_id "
                f"where a.id in ({marks}) order by a.size desc, a.id", top_ids)
        ]  # fmt: skip
    return {
        "ledger": str(ledger.path),
        "file_bytes": _file_size(ledger),
        "runs": runs,
        "tasks": tasks,
        "artifacts": artifacts,
        "blobs": blobs,
        "logical_bytes": logical,
        "unique_bytes": raw,
        "stored_bytes": stored,
        "dedup_ratio": round(logical / raw, 2) if raw else None,
        "compression_ratio": round(raw / stored, 2) if stored else None,
        "flows": per_flow,
        "largest_artifacts": top,
    }


# -- logs: doctor's repair and stats (the "logs" area) -----------------------------------------


def _rebuild_search_index(ledger: Ledger) -> str:
    """Rebuild every search index; says what it indexed."""
    with ledger.write() as conn:
        counts = rebuild_search_indexes(conn)
    return (f"rebuilt the search index ({counts['log_pieces']} log pieces, "
            f"{counts['exceptions']} exceptions, {counts['artifacts']} artifacts)")  # fmt: skip


def _with_logs(ledger: Ledger, figures: dict[str, Any]) -> dict[str, Any]:
    """`stats` figures with logs and artifacts apart: `logs` (what tasks printed, as stored)
    and `artifact_bytes`, whose dedup ratio compares like with like: the bytes every
    artifact, card and S3 object refers to, over the blobs they refer to (blobs no run uses
    any more, until `gc`, are `unreferenced_bytes`, not part of the ratio)."""
    one = lambda sql: ledger.execute(sql).fetchone()  # noqa: E731
    cards = one("select coalesce(sum(b.raw_size), 0) from card c join blob b on b.sha = c.sha")[0]
    logical = int(figures["logical_bytes"]) + int(cards)
    used = ("(select sha from artifact union select sha from s3_object "
            "union select sha from card where sha is not null)")  # fmt: skip
    unique, stored = one("select coalesce(sum(raw_size), 0), coalesce(sum(stored_size), 0) "
                         f"from blob where sha in {used}")  # fmt: skip
    unreferenced = one(f"select coalesce(sum(raw_size), 0) from blob where sha not in {used}")[0]
    figures["artifact_bytes"] = {
        "logical_bytes": logical, "unique_bytes": int(unique), "stored_bytes": int(stored),
        "unreferenced_bytes": int(unreferenced),
    }  # fmt: skip
    figures["logical_bytes"], figures["unique_bytes"] = logical, int(unique)
    figures["dedup_ratio"] = round(logical / unique, 2) if unique else None
    logs: dict[str, Any] = dict(log_figures(ledger.conn))
    logs["compression_ratio"] = (round(logs["logical_bytes"] / logs["stored_bytes"], 2)
                                 if logs["stored_bytes"] else None)  # fmt: skip
    figures["logs"] = logs
    return figures


def dead_runs(path: Any) -> list[tuple[int, str]]:
    """(pk, pathspec) of runs left 'running' by a dead process, read before a writer opens
    the file (opening it marks them crashed, and `doctor --repair` says it did)."""
    import sqlite3
    from pathlib import Path

    from .connections import readonly_target

    try:
        target, _ = readonly_target(Path(path).absolute())
        conn = sqlite3.connect(target, uri=True)
    except (sqlite3.Error, OSError):
        return []
    try:
        conn.execute("pragma query_only = 1")
        conn.execute("pragma trusted_schema = 0")
        return [(pk, spec) for pk, spec, dead in _running(None, conn) if dead]  # type: ignore[arg-type]
    except sqlite3.Error:  # not a ledger, or one from before imported_run: nothing to say
        return []
    finally:
        conn.close()


def marked_crashed(ledger: Ledger, dead: list[tuple[int, str]]) -> list[str]:
    """What `doctor --repair` tells of the runs in `dead` that are crashed now."""
    return [f"marked {spec} as crashed (its process is gone)" for pk, spec in dead
            if (row := ledger.execute("select status from run where id = ?", (pk,)).fetchone())
            and row[0] == "crashed"]  # fmt: skip
