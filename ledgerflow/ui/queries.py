"""What the pages of `ledgerflow ui` read, over the ledger's read-only connection.

Every list is paged (keyset paging on indexed columns, so the 2,000th page of 100k runs
costs what the first does) and nothing here decodes a value: previews and the plain `value`
column only.
"""

from __future__ import annotations

import json
from typing import Any

from ..liveness import run_is_dead

PAGE = 50
MAX_GANTT_TASKS = 2000


def _rows(ledger: Any, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    cur = ledger.execute(sql, tuple(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _one(ledger: Any, sql: str, params: Any = ()) -> dict[str, Any] | None:
    rows = _rows(ledger, sql, params)
    return rows[0] if rows else None


def shown_status(row: dict[str, Any]) -> str:
    """A 'running' run whose process is gone shows as 'crashed' (as `ledgerflow runs`)."""
    if row["status"] == "running" and run_is_dead(row["host"], row["pid"], row["heartbeat_at"]):
        return "crashed"
    return str(row["status"])


_RUN = (
    "r.id as pk, f.name as flow, r.run_id, r.status, r.created_at, r.finished_at, r.user, "
    "r.host, r.pid, r.heartbeat_at, r.params, r.origin_run_id, r.machine_id"
)


def runs_page(ledger: Any, flow: str | None, status: str | None, tag: str | None,
              after: str | None) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """One page of runs, newest first, and the cursor of the next page (None at the end).
    The cursor is 'created_at|id' of the last run looked at; the run(created_at) index
    makes each page one index range, however deep."""
    where: list[str] = []
    params: list[Any] = []
    if flow:
        where.append("r.flow_id = (select id from flow where name = ?)")
        params.append(flow)
    live = status in ("running", "crashed")  # a dead 'running' run shows as crashed
    if live:
        where.append("r.status in ('running', 'crashed')")
    elif status:
        where.append("r.status = ?")
        params.append(status)
    if tag:
        where.append("exists (select 1 from tag t where t.run_id = r.id and t.tag = ?)")
        params.append(tag)
    rows: list[dict[str, Any]] = []
    cursor = after
    while True:
        clauses, values = list(where), list(params)
        if cursor:
            created, _, pk = cursor.partition("|")
            # A row value, not `a < ? or (a = ? and id < ?)`: SQLite reads it as one index
            # range (measured on 100k runs: 0.14 ms a page, against 7 ms for the `or`).
            clauses.append("(r.created_at, r.id) < (?, ?)")
            values += [created, int(pk) if pk.isdigit() else 0]
        batch = _rows(ledger,
                      f"select {_RUN}, (select count(*) from task t where t.run_id = r.id) "
                      "as tasks from run r join flow f on f.id = r.flow_id "
                      + (f"where {' and '.join(clauses)} " if clauses else "")
                      + "order by r.created_at desc, r.id desc limit ?",
                      [*values, PAGE + 1])  # fmt: skip
        for row in batch[:PAGE]:
            row["shown_status"] = shown_status(row)
            if not live or row["shown_status"] == status:
                rows.append(row)
            if len(rows) == PAGE:
                more = len(batch) > PAGE or row is not batch[-1]
                return rows, f"{row['created_at']}|{row['pk']}" if more else None
        if len(batch) <= PAGE:
            return rows, None
        cursor = f"{batch[PAGE - 1]['created_at']}|{batch[PAGE - 1]['pk']}"


def flows(ledger: Any) -> list[str]:
    return [r["name"] for r in _rows(ledger, "select name from flow order by name")]


def run(ledger: Any, flow: str, run_id: str) -> dict[str, Any] | None:
    row = _one(ledger, f"select {_RUN}, r.graph_info from run r join flow f on f.id = r.flow_id "
                       "where f.name = ? and r.run_id = ?", (flow, run_id))  # fmt: skip
    if row is not None:
        row["shown_status"] = shown_status(row)
        row["tags"] = [
            r["tag"]
            for r in _rows(
                ledger,
                "select tag from tag where run_id = ? and system = 0 order by tag",
                (row["pk"],),
            )
        ]
        row["graph"] = _json(row.pop("graph_info"), {})
        row["params"] = _json(row["params"], {})
    return row


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


_TASK = (
    "t.id as pk, t.step, t.task_id, t.attempt, t.status, t.started_at, t.finished_at, "
    "t.foreach_index, t.exception_type, t.exception, t.origin_pathspec"
)


def final_tasks(ledger: Any, run_pk: int, step: str | None = None,
                limit: int = MAX_GANTT_TASKS) -> list[dict[str, Any]]:  # fmt: skip
    """Each task's final attempt, in start order (at most `limit`)."""
    sql = (
        f"select {_TASK} from task t where t.run_id = ? "
        + ("and t.step = ? " if step else "")
        + "and t.attempt = (select max(attempt) from task m where m.run_id = t.run_id and "
        "m.step = t.step and m.task_id = t.task_id) order by t.started_at, t.id limit ?"
    )
    return _rows(ledger, sql, (run_pk, step, limit) if step else (run_pk, limit))


def run_signature(ledger: Any, run_pk: int) -> str:
    """Changes whenever the run's status or its tasks change (the run page polls it)."""
    row = ledger.execute(
        "select r.status, (select count(*) from task where run_id = r.id), "
        "(select max(id) from task where run_id = r.id) from run r where r.id = ?",
        (run_pk,),
    ).fetchone()
    return "|".join(str(v) for v in row) if row else "gone"


def task_attempts(ledger: Any, run_pk: int, step: str, task_id: str) -> list[dict[str, Any]]:
    return _rows(
        ledger,
        f"select {_TASK}, t.traceback from task t where t.run_id = ? and "
        "t.step = ? and t.task_id = ? order by t.attempt",
        (run_pk, step, task_id),
    )


def logs(ledger: Any, task_pk: int) -> dict[str, str]:
    out = {"stdout": "", "stderr": ""}
    for row in _rows(ledger, "select stream, text from log where task_id = ?", (task_pk,)):
        out[row["stream"]] = row["text"]
    return out


def artifacts(ledger: Any, task_pk: int) -> list[dict[str, Any]]:
    return _rows(ledger,
                 "select a.name, a.type, a.size, a.encoding, a.sha, a.value, a.inherited, "
                 "b.preview from artifact a join blob b on b.sha = a.sha where a.task_id = ? "
                 "and substr(a.name, 1, 1) != '_' order by a.name", (task_pk,))  # fmt: skip


def artifact(ledger: Any, task_pk: int, name: str) -> dict[str, Any] | None:
    return _one(ledger,
                "select a.name, a.type, a.size, a.encoding, a.sha, a.value, a.inherited, "
                "b.preview, b.python_version, b.n_chunks from artifact a "
                "join blob b on b.sha = a.sha where a.task_id = ? and a.name = ?",
                (task_pk, name))  # fmt: skip


def card(ledger: Any, card_pk: int) -> dict[str, Any] | None:
    from ..cards.storage import has_card_table

    if not has_card_table(ledger.conn):
        return None
    return _one(ledger, "select id, task_id, seq, type, card_id, sha, error from card "
                        "where id = ?", (card_pk,))  # fmt: skip
