"""The storage layer owns the SQL (docs/architecture.md, "Who owns what"): statements on the
run's tables appear only in the modules listed here, each for the reason given, and never
in the command lines, the Client API or the UI, which read through `ledgerflow/reads.py`.

A statement is a string literal (an f-string's literal text included) holding an SQL verb
and naming one of the tables after from/join/into/update, or a statement built from a table's
declaration (`insert_sql(TASK, ...)`); prose and the friendly views (`runs`, `tasks`,
`artifacts`, `all_artifacts`) do not count. The tables are every one `ledgerflow/tables.py`
declares, so a new table is guarded from its first migration on.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ledgerflow
from ledgerflow import tables

ROOT = Path(ledgerflow.__file__).parent
# Longest first, so that `task_parent` is not read as `task`.
TABLES = sorted(tables.TABLES, key=len, reverse=True)
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
    for node in ast.walk(tree):  # statements derived from a declaration: insert_sql(TASK, ...)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "insert_sql":
            declared = node.args[0]
            if isinstance(declared, ast.Name) and declared.id.lower() in tables.TABLES:
                found.add(declared.id.lower())
    return found


def sql_owners() -> dict[str, list[str]]:
    owners = {}
    for path in sorted(ROOT.rglob("*.py")):
        touched = tables_touched(path)
        if touched:
            owners[str(path.relative_to(ROOT))] = sorted(touched)
    return owners


def _tables(names: str) -> list[str]:
    return sorted(names.split())


def test_only_the_storage_modules_hold_sql_on_the_ledgers_tables():
    assert sql_owners() == {
        # Every read of the Client API, `ledgerflow runs/show/logs/diff/explain`,
        # `ledgerflow ui`, cards, S3 objects, the trust check and `run --reuse`'s lookups.
        "reads.py": _tables(
            "artifact blob card flow imported_run run s3_object step_code tag task task_key"
            " task_parent"
        ),
        # Every write of a run (one writer), cards and S3 objects with it, reuse keys,
        # `meta`, `trust --source`, and marking dead runs crashed on open.
        "writes.py": _tables(
            "artifact card flow imported_run meta run s3_object step_code tag task task_key"
            " task_parent"
        ),
        # Opening the file: the facts `meta` holds about it.
        "ledger.py": ["meta"],
        # Blobs and their chunks: stored once per SHA-256, verified on every read.
        "blobstore.py": ["blob", "blob_chunk"],
        # Logs as compressed pieces: written, read a page at a time, indexed, migrated,
        # copied, checked (the writer and readers call it for every log).
        "logstore.py": _tables("flow log log_piece run task"),
        # Migrations and the friendly views over the tables.
        "schema.py": ["artifact", "blob", "flow", "run", "tag", "task"],
        # The same views, as a new ledger is made from them at once (generated).
        "ddl_latest.py": ["artifact", "blob", "flow", "run", "tag", "task"],
        # The full-text index's whole lifecycle: build, update on write, rebuild, drop.
        "search_index.py": ["artifact", "blob", "flow", "run", "task"],
        # The full-text search query: FTS5 hits joined to the run they belong to.
        "fulltext.py": _tables("artifact flow log_piece run task"),
        # rm, gc, doctor: whole-file upkeep, one transaction each.
        "upkeep.py": _tables("artifact blob blob_chunk card flow imported_run run s3_object task"),
        # export/import: copies a run's rows (and its reuse keys) between two files.
        "sharing.py": _tables(
            "artifact blob blob_chunk card flow imported_run run s3_object step_code tag task"
            " task_key task_parent"
        ),
        # Run.replace_tags: Metaflow's client writes a run's tags, in one transaction.
        "client/objects.py": ["tag"],
    }


def test_every_declared_table_is_guarded():
    assert set(TABLES) == set(tables.TABLES) >= {"card", "s3_object", "imported_run", "meta"}


def test_the_scanner_sees_statements_and_ignores_prose(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'A = "select id from run where flow_id = ?"\n'
        'B = f"select {cols} from task t join artifact a on a.task_id = t.id"\n'
        'C = "the run from task 3 is shown"\n'  # prose: no verb
        'D = "select name from all_artifacts union select run_id from runs"\n'  # views
        "E = insert_sql(CARD, names)\n"  # derived from a declaration
        'F = "delete from task_parent where parent_id = ?"\n'
    )
    assert tables_touched(sample) == {"run", "task", "artifact", "card", "task_parent"}
