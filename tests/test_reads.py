"""ledgerflow/reads.py, the read queries the Client API, the `ledgerflow` commands and
`ledgerflow ui` share: every one of them starts from an index, and the three surfaces read
the same answers through it. Real flows, run by the real command line."""

from __future__ import annotations

import inspect
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ledgerflow import Run, default_namespace, namespace, reads
from ledgerflow.cli.main import cli
from ledgerflow.ledger import Ledger
from ledgerflow.views import queries

from .helpers import FLOWS, run_flow


@pytest.fixture(scope="module")
def lf(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A foreach run (tagged), a linear run and a failed linear run, in one ledger."""
    folder = tmp_path_factory.mktemp("reads")
    db = folder / "ledgerflow.db"
    ids = {}
    for name, flow, args, code in (
        ("foreach", FLOWS / "client" / "foreach_flow.py", ("--tag", "nightly"), 0),
        ("linear", FLOWS / "client" / "linear_flow.py", (), 0),
        ("failed", FLOWS / "client" / "linear_flow.py", ("--fail", "true"), 1),
    ):
        run_flow(flow, *args, "--run-id-file", str(folder / name), db=db, check=code)
        ids[name] = (folder / name).read_text().strip()
    return SimpleNamespace(db=db, **ids)


# Allowed: the one-row-a-flow `flow` table read whole, a subquery's own result, the
# UI's newest-first page of every run, which walks the run(created_at) index in order and
# stops at its LIMIT, a list of pks passed as JSON (each then found by its key), and
# SQLite's own catalogue (a row a table or index: whether a file has the `card` table).
_ALLOWED_SCANS = ("SCAN flow", "SCAN (", "SCAN r USING INDEX run_created_at",
                  "SCAN json_each VIRTUAL TABLE", "SCAN sqlite_master")  # fmt: skip
# Reads of a whole table by design, each named by its statement: every run's pk, which
# `ledgerflow trust FILE` fingerprints.
_WHOLE_TABLE_READS = {"select id from run order by id"}


def _scans(db: Path, statements: list[tuple[str, tuple]]) -> list[tuple[str, str]]:
    """(plan line, statement) for every full scan but those allowed."""
    conn = sqlite3.connect(db)
    try:
        return [(row[3], sql) for sql, params in statements
                for row in conn.execute("explain query plan " + sql, params)
                if row[3].startswith("SCAN") and not row[3].startswith(_ALLOWED_SCANS)
                and sql not in _WHOLE_TABLE_READS]  # fmt: skip
    finally:
        conn.close()


def test_every_read_starts_from_an_index(lf: SimpleNamespace) -> None:
    ledger = Ledger.open(lf.db, reader=True)
    statements: list[tuple[str, tuple]] = []
    called: set[str] = set()

    def call(name: str, *args, **kwargs):
        called.add(name)
        return getattr(reads, name)(ledger, *args, **kwargs)

    reads.trace = lambda sql, params: statements.append((sql, params))
    try:
        flow = call("flow", "ForeachFlow")
        call("flows"), call("flows", "nightly"), call("flow_names", 1)
        call("flow_has_tag", flow["id"], "nightly"), call("require_flow", "ForeachFlow")
        run = call("find_run", "ForeachFlow", lf.foreach)
        call("run_row", "ForeachFlow", lf.foreach), call("run_pk", "ForeachFlow", lf.foreach)
        call("has_run", flow["id"], lf.foreach)
        call("flows_with_run", lf.foreach)
        for kwargs in ({}, {"tags": ["nightly"], "limit": 1}, {"status": "failed"},
                       {"status": "crashed"}, {"successful": True}, {"listing": True}):  # fmt: skip
            call("flow_runs", flow, **kwargs)
        for kwargs in ({}, {"flow_name": "LinearFlow", "status": "failed"},
                       {"tag": "nightly", "before": (run["created_at"], run["pk"])},
                       {"status": "running"}):  # fmt: skip
            call("runs_page", **kwargs)
        pk = run["pk"]
        (
            call("run_tags", pk),
            call("run_graph_info", pk),
            call("run_code", pk),
            call("run_progress", pk),
        )
        call("step_starts", pk), call("step_names", pk), call("step_row", pk, "body")
        call("has_step", pk, "body"), call("step_order", pk), call("step_status_counts", pk)
        call("step_finish", pk, "body"), call("task_count", pk)
        tasks = call("final_tasks", pk)
        (
            call("final_tasks", pk, "body", limit=2),
            call("final_tasks", pk, "body", tasks[1]["task_id"]),
        )
        call("step_tasks", pk, "body", 1), call("step_tasks", pk, "body")
        page = call("step_tasks_page", pk, "body", 2)
        last = page[-1]
        call("step_tasks_page", pk, "body", 2, (last["created_at"], len(last["task_id"]),
                                                last["task_id"]))  # fmt: skip
        gather = next(t for t in tasks if t["step"] == "gather")
        call("find_task", pk, "gather", gather["task_id"])
        call("find_task", pk, "gather", gather["task_id"], 0)
        call("task_attempts", pk, "gather", gather["task_id"])
        call("task_ids", pk, "body"), call("has_task", pk, "gather", gather["task_id"])
        call("task_traceback", gather["pk"]), call("task_and_run_state", gather["pk"])
        call("related_tasks", pk, "gather", gather["task_id"], True)
        call("related_tasks", pk, "gather", gather["task_id"], False)
        call("log_text", gather["pk"], "stdout"), call("log_size", gather["pk"], "stdout")
        call("logs", gather["pk"])
        arts = call("task_artifacts", gather["pk"])
        call("task_artifacts", gather["pk"], public=True, blob=True)
        call("find_artifact", gather["pk"], arts[0]["name"])
        call("find_artifact", gather["pk"], arts[0]["name"], blob=True)
        call("has_artifact", gather["pk"], arts[0]["name"])
        call("attempt_artifacts", "ForeachFlow", lf.foreach, "gather", gather["task_id"], 0)
        call("attempt_artifacts", "ForeachFlow", lf.foreach, "gather", gather["task_id"], 0,
             arts[0]["name"])  # fmt: skip
        call("run_artifact_shas", pk), call("blob_preview", arts[0]["sha"])
        assert isinstance(call("run_has_pickles", pk), bool)
        bodies = [t["pk"] for t in tasks if t["step"] == "body"]
        assert len(call("tasks_by_pk", bodies)) == len(bodies)  # a join's inputs
        assert {row[0] for row in call("artifacts_of_tasks", bodies)} == set(bodies)
        assert call("has_card_table") is True
        call("card_rows", bodies), call("card", 1)
        assert call("s3_object", pk, "k") is None and call("s3_keys", pk) == []
        assert call("imported_run", pk) is None  # made here, not copied in
        # what `ledgerflow trust FILE` fingerprints (trust_store.run_fingerprints)
        assert pk in call("run_pks")
        assert call("run_pathspecs", [pk]) == [(pk, "ForeachFlow", lf.foreach)]
        assert {sha for _, sha, _ in call("run_blob_refs", [pk])} >= {a["sha"] for a in arts}
        # run --reuse (every run records keys)
        key = call("task_key", gather["pk"])
        assert key is not None and len(key["key"]) == 64
        assert gather["pk"] in [t["pk"] for t in call("reusable_tasks", key["key"])]
        assert call("task_for_clone", gather["pk"])["step"] == "gather"
        assert call("step_code", pk, "gather") is not None
        call("earlier_keyed_tasks", flow["id"], "gather", gather["pk"])
        assert {p for p, _, _ in call("parent_artifact_shas", gather["pk"])} == set(bodies)
        # the UI's and notebook views' reads
        assert call("run_has_retries", pk) in (True, False)
        call("step_status_spread", pk), call("step_status_spread", pk, False)
        call("final_tasks_of_steps", pk, ["start", "body"], 10)
        call("step_attempts_by_task", pk, "body", None, 3)
        call("step_attempts_by_task", pk, "body", (1, "2"), 3)
        call("blob_size_and_encoding", arts[0]["sha"]), call("task_place", gather["pk"])
        call("runs_table", flow["id"], ["nightly"], ["x"], 5)
    finally:
        reads.trace = None
    queries_of_reads = {
        name for name, fn in vars(reads).items()
        if inspect.isfunction(fn) and fn.__module__ == reads.__name__
        and not name.startswith("_") and list(inspect.signature(fn).parameters)[:1] == ["ledger"]
        and name not in ("cursor", "rows", "one")
    }  # fmt: skip
    assert called == queries_of_reads  # a new read is added here, and so checked
    assert len(statements) > 60
    assert _scans(lf.db, statements) == []


@pytest.fixture
def no_namespace():
    namespace(None)
    yield
    default_namespace()


def test_the_cli_the_client_and_the_ui_read_the_same_run(lf: SimpleNamespace, no_namespace) -> None:
    pathspec = f"LinearFlow/{lf.failed}"
    result = CliRunner().invoke(cli, ["--db", str(lf.db), "show", pathspec, "--json"],
                                catch_exceptions=False)  # fmt: skip
    shown = json.loads(result.stdout)
    run = Run(pathspec, ledger=lf.db)
    page = queries.run(Ledger.open(lf.db, reader=True), "LinearFlow", lf.failed)
    assert page is not None
    assert shown["status"] == run.status == page["shown_status"] == "failed"
    assert [s["step"] for s in shown["steps"]] == ["start", "middle"]
    assert sorted(s.id for s in run) == sorted(s["step"] for s in shown["steps"])
    assert shown["params"] == page["params"] == {"alpha": 3, "fail": True}
    assert set(shown["tags"]) == set(run.user_tags) == set(page["tags"])
    assert set(shown["system_tags"]) == set(run.system_tags)
    middle = run["middle"].task
    tasks = queries.final_tasks(Ledger.open(lf.db, reader=True), page["pk"], "middle")
    assert [(t["task_id"], t["status"]) for t in tasks] == [(middle.id, "failed")]
