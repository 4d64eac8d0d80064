"""Reads that stay flat at scale: a step's tasks a page at a time (order and attempts as
Metaflow shows them), `show STEP` on a wide step, and the schema migrations on an old ledger.
Timings live in scripts/bench_scale.py; these tests check correctness only."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledgerflow import Step, namespace, reads, writes
from ledgerflow.cli.main import cli
from ledgerflow.ledger import Ledger
from ledgerflow.records import TaskRecord

from .helpers import FLOWS, query, run_flow

WIDE = FLOWS / "scale" / "wide_retry.py"


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One real run of a 160-task foreach where every 7th task needed a second attempt."""
    db = tmp_path_factory.mktemp("wide") / "ledgerflow.db"
    proc = run_flow(WIDE, "--max-num-splits", "200", db=db)
    return db, proc.stdout.strip().splitlines()[-1]


def expected_order(db: Path, run_id: str, step: str) -> list[tuple[str, int]]:
    """(task id, latest attempt), newest first, computed from plain SQL as Metaflow orders:
    by when the task's first attempt started, then task id numerically."""
    latest: dict[str, int] = {}
    first: dict[str, str] = {}
    for task_id, attempt, started in query(
        db, "select task_id, attempt, started_at from tasks where run_id = ? and step = ?",
        (run_id, step),
    ):  # fmt: skip
        latest[task_id] = max(latest.get(task_id, attempt), attempt)
        first[task_id] = min(first.get(task_id, started), started)
    ids = sorted(latest, key=lambda t: (first[t], len(t), t), reverse=True)
    return [(t, latest[t]) for t in ids]


def test_step_iterates_every_task_once_newest_first_at_its_latest_attempt(wide_run):
    db, run_id = wide_run
    namespace(None)
    tasks = list(Step(f"WideRetryFlow/{run_id}/fan", ledger=db))
    want = expected_order(db, run_id, "fan")
    assert len(want) == 160  # more than two pages (50, then 100)
    assert [(t.id, t.current_attempt) for t in tasks] == want
    retried = [t for t in tasks if t.index % 7 == 0]
    assert retried and all(t.current_attempt == 1 and t.successful for t in retried)
    assert all(t.data.square == t.index**2 for t in tasks[:3])


def test_first_tasks_of_a_wide_step_take_one_short_query(wide_run):
    db, run_id = wide_run
    namespace(None)
    step = Step(f"WideRetryFlow/{run_id}/fan", ledger=db)
    seen: list[tuple[str, tuple]] = []
    reads.trace = lambda sql, params: seen.append((sql, params))
    try:
        first = list(itertools.islice(step, 5))
        newest = step.task
    finally:
        reads.trace = None
    assert [t.id for t in first] == [t for t, _ in expected_order(db, run_id, "fan")[:5]]
    assert newest == first[0]
    task_reads = [params for sql, params in seen if "from task" in sql]
    # one page of 50 for the five tasks, one row for .task: never the whole step
    assert [params[-1] for params in task_reads] == [50, 1]


def test_step_tags_filter_and_finished_at_read_the_whole_step(wide_run):
    db, run_id = wide_run
    namespace(None)
    step = Step(f"WideRetryFlow/{run_id}/fan", ledger=db)
    tag = min(step.parent.system_tags)
    assert len(list(step.tasks(tag))) == 160  # a task's tags are its run's
    assert list(step.tasks(tag, "no-such-tag")) == []
    last = max(row[0] for row in query(
        db, "select finished_at from tasks where run_id = ? and step = 'fan'", (run_id,)))  # fmt: skip
    assert step.finished_at is not None
    assert step.finished_at.strftime("%Y-%m-%dT%H:%M:%S") == last[:19]


def _record_tied_step(db: Path, n: int) -> str:
    """A step of n tasks all started at the same instant (the order falls back on the task
    id), written through the ledger's writer; tasks 1, 11, 21... have three attempts."""
    ledger = Ledger.open(db)
    run_pk = writes.create_run(ledger, "TiedFlow", "1", params={}, user="t", code=None,
                               script_name="tied.py")  # fmt: skip
    same = "2026-01-01T00:00:00.000000Z"
    records = []
    for i in range(1, n + 1):
        tries = 3 if i % 10 == 1 else 1
        records += [TaskRecord(run_pk, "fan", str(i), "failed" if a < tries - 1 else "succeeded",
                               same, same, attempt=a, foreach_index=i - 1)
                    for a in range(tries)]  # fmt: skip
    writes.record_tasks(ledger, records)
    writes.finish_run(ledger, run_pk, "succeeded")
    Ledger.forget(db)
    return "TiedFlow/1/fan"


def test_paging_keeps_ties_in_task_id_order_without_repeats(db_path):
    pathspec = _record_tied_step(db_path, 260)  # pages of 50, 100, 200: crosses two bounds
    namespace(None)
    tasks = list(Step(pathspec, ledger=db_path))
    assert [t.id for t in tasks] == [str(i) for i in range(260, 0, -1)]
    assert {t.id: t.current_attempt for t in tasks if t.current_attempt} == {
        str(i): 2 for i in range(1, 261, 10)}  # fmt: skip
    assert all(t.successful for t in tasks)


def test_show_step_lists_a_page_by_task_id_and_counts_every_task(db_path):
    _record_tied_step(db_path, 260)
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(db_path), "show", "TiedFlow/1/fan"],
                        catch_exceptions=False)  # fmt: skip
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == ("Step TiedFlow/1/fan: 260 tasks (the first 100 by task id; "
                        "--limit N for more, 0 for all)")  # fmt: skip
    assert [line.split()[0] for line in lines[2:]] == [str(i) for i in range(1, 101)]
    assert lines[2].split()[1:3] == ["succeeded", "2"]  # task 1: its latest attempt
    every = runner.invoke(cli, ["--db", str(db_path), "show", "--limit", "0", "--json",
                                "TiedFlow/1/fan"], catch_exceptions=False)  # fmt: skip
    doc = json.loads(every.output)
    assert doc["task_count"] == 260 and len(doc["tasks"]) == 260
    few = runner.invoke(cli, ["--db", str(db_path), "show", "--limit", "3", "--json",
                              "TiedFlow/1/fan"], catch_exceptions=False)  # fmt: skip
    doc = json.loads(few.output)
    assert doc["task_count"] == 260 and [t["task_id"] for t in doc["tasks"]] == ["1", "2", "3"]


def test_show_run_counts_each_steps_final_attempts(wide_run):
    db, run_id = wide_run
    out = CliRunner().invoke(cli, ["--db", str(db), "show", "--json", f"WideRetryFlow/{run_id}"],
                             catch_exceptions=False)  # fmt: skip
    steps = {s["step"]: s for s in json.loads(out.output)["steps"]}
    assert steps["fan"]["tasks"] == 160
    assert steps["fan"]["statuses"] == {"succeeded": 160}  # the failed first attempts: not final
    assert list(steps) == ["start", "fan", "join", "end"]


def test_show_rejects_a_negative_limit(db_path):
    _record_tied_step(db_path, 3)
    out = CliRunner().invoke(cli, ["--db", str(db_path), "show", "--limit", "-1",
                                   "TiedFlow/1/fan"])  # fmt: skip
    assert out.exit_code == 2 and "--limit" in out.output
    assert "Traceback" not in out.output


def test_sqlite3_sees_the_same_tasks(db_path):
    """The rows the pages come from are the documented `tasks` view's, for any SQLite tool."""
    _record_tied_step(db_path, 12)
    conn = sqlite3.connect(db_path)
    n = conn.execute("select count(distinct task_id) from tasks where flow = 'TiedFlow'").fetchone()
    conn.close()
    namespace(None)
    assert n[0] == len(list(Step("TiedFlow/1/fan", ledger=db_path))) == 12


def test_gc_with_nothing_to_collect_leaves_the_file_alone(wide_run, tmp_path):
    from ledgerflow import upkeep

    db = tmp_path / "copy.db"
    src = sqlite3.connect(wide_run[0])
    src.execute("vacuum into ?", (str(db),))  # a compact copy: no free pages to take back
    src.close()
    ledger = Ledger.open(db)
    seen: list[str] = []
    ledger.conn.set_trace_callback(seen.append)
    report = upkeep.gc(ledger)
    assert report.blobs_deleted == 0
    assert not [s for s in seen if s.strip().lower() == "vacuum"]  # no rewrite of the file
    blobs = query(db, "select count(*) from blob")[0][0]

    # After rm, gc deletes the blobs only that run used, and takes the space back.
    run = query(db, "select pathspec from runs")[0][0]
    upkeep.rm(ledger, [run])
    seen.clear()
    report = upkeep.gc(ledger)
    ledger.conn.set_trace_callback(None)
    assert report.blobs_deleted > 0
    assert [s for s in seen if s.strip().lower() == "vacuum"]
    assert query(db, "select count(*) from blob")[0][0] == blobs - report.blobs_deleted
    assert query(db, "select count(*) from blob where sha not in (select sha from artifact)"
                     " and sha not in (select sha from s3_object)") == [(0,)]  # fmt: skip
    assert query(db, "pragma integrity_check") == [("ok",)]
    Ledger.forget(db)


def test_stats_agree_with_plain_sql(wide_run, db_path):
    from ledgerflow import upkeep

    db = wide_run[0]
    _record_tied_step(db_path, 3)  # a second ledger: its flow has runs but no artifacts
    for path in (db, db_path):
        figures = upkeep.stats(Ledger.open(path, readonly=True), largest=3)
        runs, tasks, arts, size = query(path, "select (select count(*) from run), (select "
                                        "count(*) from task), (select count(*) from artifact),"
                                        " (select coalesce(sum(size), 0) from artifact)")[0]  # fmt: skip
        assert (figures["runs"], figures["tasks"], figures["artifacts"]) == (runs, tasks, arts)
        assert figures["logical_bytes"] == size
        per_flow = query(path, "select flow, count(distinct run_id), count(*),"
                               " coalesce((select sum(size) from all_artifacts a"
                               " where a.flow = t.flow), 0) from tasks t group by flow"
                               " order by flow")  # fmt: skip
        assert [(f["flow"], f["runs"], f["tasks"], f["artifact_bytes"])
                for f in figures["flows"]] == per_flow  # fmt: skip
        largest = query(path, "select pathspec, size from artifacts order by size desc limit 3")
        assert [a["size"] for a in figures["largest_artifacts"]] == [s for _, s in largest]
        assert {a["pathspec"] for a in figures["largest_artifacts"]} <= {
            p for p, in query(path, "select pathspec from artifacts")}  # fmt: skip


def _downgrade_search_index(db: Path) -> None:
    """Make `db` what the previous ledgerflow wrote: artifact_fts without prefix indexes (as
    migration 1 creates it), filled the same way, one schema version lower."""
    from ledgerflow.schema import MIGRATIONS, index_search_prefixes
    from ledgerflow.search_index import SEARCHABLE_SQL

    conn = sqlite3.connect(db)
    with conn:
        conn.execute("drop table artifact_fts")
        conn.execute("create virtual table artifact_fts using fts5("
                     "name, flow, step, preview, tokenize = 'unicode61')")  # fmt: skip
        conn.execute(
            "insert into artifact_fts(rowid, name, flow, step, preview) select a.id, a.name, "
            "f.name, t.step, b.preview from artifact a join blob b on b.sha = a.sha join task t "
            "on t.id = a.task_id join run r on r.id = t.run_id join flow f on f.id = r.flow_id "
            f"where {SEARCHABLE_SQL}"
        )
        # the version just before the prefix-index migration (later ones are idempotent)
        conn.execute(f"pragma user_version = {MIGRATIONS.index(index_search_prefixes)}")
    conn.close()


def test_old_ledger_gets_prefix_indexes_and_finds_the_same(wide_run, tmp_path):
    from ledgerflow import search
    from ledgerflow.schema import MIGRATIONS
    from ledgerflow.search_index import PREFIX_LENGTHS

    db = tmp_path / "old.db"
    src = sqlite3.connect(wide_run[0])
    src.execute("vacuum into ?", (str(db),))
    src.close()
    _downgrade_search_index(db)
    queries = ["squ*", "sq*", "square", "it*", '"fan"', "ite* OR tot*"]

    def results() -> dict[str, list[tuple[str, str, float]]]:
        return {q: [(h.pathspec, h.snippet, round(h.rank, 9))
                    for h in search(q, limit=50, kind="artifact", ledger=db)]
                for q in queries}  # fmt: skip

    before = results()
    assert len(before["squ*"]) == 50 and before["it*"]
    Ledger.open(db)  # opening for writing migrates
    Ledger.forget(db)
    ddl = query(db, "select sql from sqlite_master where name = 'artifact_fts'")[0][0]
    assert f"prefix = '{PREFIX_LENGTHS}'" in ddl
    assert query(db, "pragma user_version") == [(len(MIGRATIONS),)]
    assert not query(db, "select name from sqlite_master where name like '%unprefixed%'")
    assert results() == before
    n_indexed = query(db, "select count(*) from artifact_fts")[0][0]
    assert n_indexed == query(db, "select count(*) from artifacts where name not like '\\_%'"
                                  " escape '\\'")[0][0]  # fmt: skip
    out = CliRunner().invoke(cli, ["--db", str(db), "doctor"], catch_exceptions=False)
    assert out.exit_code == 0, out.output


def test_a_new_ledger_has_prefix_indexes_and_its_writer_fills_them(wide_run):
    from ledgerflow.search_index import PREFIX_LENGTHS

    db = wide_run[0]
    ddl = query(db, "select sql from sqlite_master where name = 'artifact_fts'")[0][0]
    assert f"prefix = '{PREFIX_LENGTHS}'" in ddl
    # every fan task's `square` is found by a 3-character prefix (the prefix index)
    hits = query(db, "select count(*) from artifact_fts where artifact_fts match 'squ*'")
    assert hits == [(160,)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 runs of four flows written by scripts/build_big_ledger.py (the benchmark's
    builder, through the ledger's own writer)."""
    import sys

    sys.path.insert(0, str(FLOWS.parent.parent / "scripts"))
    try:
        import build_big_ledger
    finally:
        sys.path.pop(0)
    db = tmp_path_factory.mktemp("history") / "ledgerflow.db"
    ledger = Ledger.open(db)
    build_big_ledger.add_runs(ledger, 0, 400)
    Ledger.forget(db)
    return db


def _reference_ranks(db: Path, narrowed: str) -> dict[int, float]:
    """bm25 of every row matching the whole narrowed query, filters included: how search
    ranked filtered queries before it ranked candidates by the user's words alone."""
    return dict(query(db, "select rowid, bm25(artifact_fts, 4.0, 1.0, 1.0, 1.0) from "
                          "artifact_fts where artifact_fts match ?", (narrowed,)))  # fmt: skip


@pytest.mark.parametrize(("text", "flow", "step", "narrowed"), [
    ("resnet5*", "TrainFlow", None, '(resnet5*) AND flow : "TrainFlow"'),
    ("alpha", "EvalFlow", "start", '("alpha") AND flow : "EvalFlow" AND step : "start"'),
    ("loss", None, "train", '("loss") AND step : "train"'),
    ("lr sgd", "SweepFlow", None, '("lr" "sgd") AND flow : "SweepFlow"'),
])  # fmt: skip
def test_filtered_search_finds_every_match_in_the_old_order(history, text, flow, step,
                                                            narrowed):  # fmt: skip
    from ledgerflow import search

    hits = search(text, flow=flow, step=step, limit=500, kind="artifact", ledger=history)
    ids = dict(query(history, "select f.name || '/' || r.run_id || '/' || t.step || '/' ||"
                              " t.task_id || '/' || a.name, a.id from artifact a join task t"
                              " on t.id = a.task_id join run r on r.id = t.run_id join flow f"
                              " on f.id = r.flow_id where a.inherited = 0"))  # fmt: skip
    reference = _reference_ranks(history, narrowed)
    assert hits and {ids[h.pathspec] for h in hits} == set(reference)
    assert all(h.flow == flow for h in hits if flow) and all(h.step == step for h in hits if step)
    old_order = [reference[ids[h.pathspec]] for h in hits]
    assert old_order == sorted(old_order)  # ties aside, the order bm25 gave with the filters


def test_filtered_search_with_no_candidates_is_empty(history):
    from ledgerflow import search

    assert search("resnet5*", flow="NoSuchFlow", ledger=history) == []
    assert search("keyword", step="end", name="seed", ledger=history) == []


def test_a_wide_steps_notebook_table_shows_one_page(db_path):
    _record_tied_step(db_path, 260)
    namespace(None)
    step = Step("TiedFlow/1/fan", ledger=db_path)
    html = step._repr_html_()
    shown = [f"TiedFlow/1/fan/{i}<" for i in range(161, 261)]  # the newest 100
    assert all(cell in html for cell in shown)
    assert "TiedFlow/1/fan/160<" not in html and "more tasks" in html
    small = Step(_record_small(db_path), ledger=db_path)._repr_html_()
    assert "more tasks" not in small


def _record_small(db: Path) -> str:
    ledger = Ledger.open(db)
    run_pk = writes.create_run(ledger, "SmallFlow", "1", params={}, user="t", code=None,
                               script_name="small.py")  # fmt: skip
    same = "2026-01-01T00:00:00.000000Z"
    writes.record_tasks(ledger, [TaskRecord(run_pk, "fan", str(i), "succeeded", same, same)
                         for i in range(1, 4)])  # fmt: skip
    writes.finish_run(ledger, run_pk, "succeeded")
    Ledger.forget(db)
    return "SmallFlow/1/fan"
