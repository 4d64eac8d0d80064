"""What the pages of `ledgerflow ui` read, over the ledger's read-only connection, through
the library's reads (`ledgerflow/reads.py`).

Every list is paged (keyset paging on indexed columns, so the 2,000th page of 100k runs
costs what the first does) and nothing here decodes a value: previews and the plain `value`
column only.
"""

from __future__ import annotations

import json
from typing import Any

from .. import reads

PAGE = 50
MAX_GANTT_TASKS = 2000

# A 'running' run whose process is gone shows as 'crashed' (as `ledgerflow runs`).
shown_status = reads.shown_run_status


def runs_page(ledger: Any, flow: str | None, status: str | None, tag: str | None,
              after: str | None) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """One page of runs, newest first, and the cursor of the next page (None at the end).
    The cursor is 'created_at|id' of the last run looked at; the run(created_at) index
    makes each page one index range, however deep."""
    live = status in ("running", "crashed")  # a dead 'running' run shows as crashed
    rows: list[dict[str, Any]] = []
    cursor = after
    while True:
        before = None
        if cursor:
            created, _, pk = cursor.partition("|")
            before = (created, int(pk) if pk.isdigit() else 0)
        batch = reads.runs_page(ledger, flow_name=flow, status=status, tag=tag, before=before,
                                limit=PAGE + 1)  # fmt: skip
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
    return reads.flow_names(ledger)


def run(ledger: Any, flow: str, run_id: str) -> dict[str, Any] | None:
    row = reads.find_run(ledger, flow, run_id, graph=True)
    if row is not None:
        row["shown_status"] = shown_status(row)
        row["tags"] = sorted(t for t, system in reads.tag_pairs(row) if not system)
        row["graph"] = _json(row.pop("graph_info"), {})
        row["params"] = _json(row["params"], {})
    return row


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def final_tasks(ledger: Any, run_pk: int, step: str | None = None,
                limit: int = MAX_GANTT_TASKS) -> list[dict[str, Any]]:  # fmt: skip
    """Each task's final attempt, in start order (at most `limit`)."""
    return reads.final_tasks(ledger, run_pk, step or None, limit=limit)


def run_signature(ledger: Any, run_pk: int) -> str:
    """Changes whenever the run's status or its tasks change (the run page polls it)."""
    row = reads.run_progress(ledger, run_pk)
    return "|".join(str(v) for v in row) if row else "gone"


def task_attempts(ledger: Any, run_pk: int, step: str, task_id: str) -> list[dict[str, Any]]:
    return reads.task_attempts(ledger, run_pk, step, task_id)


def task_state(ledger: Any, task_pk: int) -> dict[str, Any] | None:
    """A task attempt's finished_at and its run's shown status (shown_status), or None."""
    row = reads.task_and_run_state(ledger, task_pk)
    if row is not None:
        row["shown_status"] = shown_status(row)
    return row


def logs(ledger: Any, task_pk: int) -> dict[str, str]:
    return reads.logs(ledger, task_pk)


def artifacts(ledger: Any, task_pk: int) -> list[dict[str, Any]]:
    return reads.task_artifacts(ledger, task_pk, public=True, blob=True)


def artifact(ledger: Any, task_pk: int, name: str) -> dict[str, Any] | None:
    return reads.find_artifact(ledger, task_pk, name, blob=True)


def card(ledger: Any, card_pk: int) -> dict[str, Any] | None:
    return reads.card(ledger, card_pk)
