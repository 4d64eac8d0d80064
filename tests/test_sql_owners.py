"""The storage layer owns the SQL (docs/architecture.md, "Who owns what"): statements on the
run's tables appear only in the modules listed here, each for the reason given, and never
in the command lines, the Client API or the UI, which read through `ledgerflow/reads.py`.

A statement is a string literal (an f-string's literal text included) holding an SQL verb
and naming one of the tables after from/join/into/update; prose and the friendly views
(`runs`, `tasks`, `artifacts`, `all_artifacts`) do not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ledgerflow

ROOT = Path(ledgerflow.__file__).parent
TABLES = (
    "flow",
    "run",
    "task",
    "task_parent",
    "artifact",
    "log",
    "log_piece",
    "tag",
    "blob",
    "blob_chunk",
)
_VERB = re.compile(r"\b(select|insert|update|delete|replace)\b", re.IGNORECASE)
_TABLE = re.compile(
    rf"\b(?:from|join|into|update)\s+\"?({'|'.join(TABLES)})\"?(?![\w.])", re.IGNORECASE
)


def tables_touched(path: Path) -> set[str]:
    """The tables that SQL statements written in this file name."""
    tree = ast.parse(path.read_text())
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in parts:  # counted with its f-string
                continue
            text = node.value
        else:
            continue
        if _VERB.search(text):
            found.update(m.lower() for m in _TABLE.findall(text))
    return found


def sql_owners() -> dict[str, list[str]]:
    owners = {}
    for path in sorted(ROOT.rglob("*.py")):
        touched = tables_touched(path)
        if touched:
            owners[str(path.relative_to(ROOT))] = sorted(touched)
    return owners


def test_only_the_storage_modules_hold_sql_on_the_ledgers_tables():
    every = ["artifact", "blob", "flow", "run", "tag", "task", "task_parent"]
    assert sql_owners() == {
        # Every read of the Client API, `ledgerflow runs/show/logs/diff` and `ledgerflow ui`
        # (a log's text through logstore.py).
        "reads.py": every,
        # The file: run and task writes (one writer), marking dead runs crashed on open.
        "ledger.py": ["artifact", "flow", "run", "tag", "task", "task_parent"],
        # Task logs: compressed pieces written as output streams in, read back, paged,
        # copied by import, moved out of `log.text` by migration 8.
        "logstore.py": ["flow", "log", "log_piece", "run", "task"],
        # Blobs and their chunks: stored once per SHA-256, verified on every read.
        "blobstore.py": ["blob", "blob_chunk"],
        # Migrations and the friendly views over the tables.
        "schema.py": ["artifact", "blob", "flow", "run", "tag", "task"],
        # The full-text index's whole lifecycle: build, update on write, rebuild, drop.
        "search_index.py": ["artifact", "blob", "flow", "run", "task"],
        # The full-text search query: FTS5 hits joined to the run they belong to.
        "fulltext.py": ["artifact", "flow", "log_piece", "run", "task"],
        # rm, gc, doctor: whole-file upkeep, one transaction each.
        "upkeep.py": ["artifact", "blob", "blob_chunk", "flow", "run", "task"],
        # export/import: copies a run's rows between two files.
        "sharing.py": sorted([*every, "blob_chunk"]),  # logs through logstore.copy_logs
        # Run.replace_tags: Metaflow's client writes a run's tags, in one transaction.
        "client/runs.py": ["tag"],
    }


def test_the_scanner_sees_statements_and_ignores_prose(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'A = "select id from run where flow_id = ?"\n'
        'B = f"select {cols} from task t join artifact a on a.task_id = t.id"\n'
        'C = "the run from task 3 is shown"\n'  # prose: no verb
        'D = "select name from all_artifacts union select run_id from runs"\n'  # views
    )
    assert tables_touched(sample) == {"run", "task", "artifact"}
