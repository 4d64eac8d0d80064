"""Full-text search and read-only SQL, through Python and the `ledgerflow` command."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest
from click.testing import CliRunner

import ledgerflow
from ledgerflow.cli.main import cli
from ledgerflow.fulltext import SearchError, fts_query, search
from ledgerflow.query import SQLError, sql

from .helpers import run_flow

FLOW = """
from ledgerflow import FlowSpec, Parameter, step


class {name}(FlowSpec):
    model_name = Parameter("model_name", default="resnet50_v2")
    note = Parameter("note", default="plain")

    @step
    def start(self):
        self.config = {{"optimizer": "adamw", "tag": "keyword-17", "layers": [64, 128]}}
        self.description = "a " + self.note + " training run"
        self.next(self.end)

    @step
    def end(self):
        self.accuracy = 0.5 if self.note == "plain" else 0.9


if __name__ == "__main__":
    {name}()
"""


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """Three runs of two flows, shared by the module's tests (which only read it)."""
    tmp_path = tmp_path_factory.mktemp("query")
    db_path = tmp_path / "ledgerflow.db"
    for name in ("TrainFlow", "OtherFlow"):
        path = tmp_path / f"{name.lower()}.py"
        path.write_text(textwrap.dedent(FLOW.format(name=name)))
        run_flow(path, db=db_path)
    run_flow(tmp_path / "trainflow.py", "--note", "zebra", "--model_name", "vgg16", db=db_path)
    return db_path


def names(hits):
    return [(h.flow, h.step, h.name) for h in hits]


def test_search_by_value_text_by_name_and_by_identifier_parts(ledger):
    assert {h.name for h in search("zebra", ledger=ledger)} == {"note", "description"}
    assert {h.name for h in search("adamw", ledger=ledger)} == {"config"}
    assert len(search("adamw", ledger=ledger)) == 3  # across runs and flows
    for part in ("resnet50_v2", "resnet50", "v2", "keyword-17", "keyword", "17"):
        found = {h.name for h in search(part, ledger=ledger)}
        assert found, part
    assert {h.name for h in search("resnet50", ledger=ledger)} == {"model_name"}
    assert {h.name for h in search("keyword-17", ledger=ledger)} == {"config"}
    hits = search("accuracy", ledger=ledger)
    assert {h.name for h in hits} == {"accuracy"} and hits[0].step == "end"


def test_search_filters_limit_and_ranking(ledger):
    hits = search("adamw", flow="OtherFlow", ledger=ledger)
    assert [h.flow for h in hits] == ["OtherFlow"]
    assert search("adamw", step="end", ledger=ledger) == []
    assert len(search("adamw", limit=1, ledger=ledger)) == 1
    assert search("adamw", since="2999-01-01", ledger=ledger) == []
    assert len(search("adamw", since="2000-01-01", ledger=ledger)) == 3
    # a hit in the name outranks a hit in a value
    hits = search("description OR training", ledger=ledger)
    assert hits[0].name == "description"
    assert all(a.rank <= b.rank for a, b in zip(hits, hits[1:]))
    hit = search("zebra", name="note", ledger=ledger)[0]
    assert "[zebra]" in hit.snippet and hit.pathspec.endswith("/start/1/note")


def test_fts_syntax_passes_through_and_bad_syntax_is_a_clear_error(ledger):
    assert search('"training run"', ledger=ledger)
    assert search("adam*", ledger=ledger)
    assert search("zebra AND training", ledger=ledger)
    assert {h.name for h in search("zebra NOT training", ledger=ledger)} == {"note"}
    with pytest.raises(SearchError, match="invalid search query"):
        search("foo AND (", ledger=ledger)
    with pytest.raises(SearchError, match="empty search query"):
        search("  ", ledger=ledger)
    assert fts_query('keyword-17 "x"') == 'keyword-17 "x"'
    assert fts_query("keyword-17 resnet") == '"keyword-17" "resnet"'


def test_search_uses_the_index(ledger):
    conn = sqlite3.connect(ledger)
    plan = [
        r[3]
        for r in conn.execute(
            "explain query plan select a.name from artifact_fts join artifact a on "
            "a.id = artifact_fts.rowid join task t on t.id = a.task_id where artifact_fts match 'x'"
        )
    ]
    assert "VIRTUAL TABLE INDEX" in plan[0]
    assert plan[1:] == [
        "SEARCH a USING INTEGER PRIMARY KEY (rowid=?)",
        "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)",
    ]


def test_search_never_unpickles(db_path, tmp_path):
    ledger = db_path
    flow = tmp_path / "pickled.py"
    flow.write_text(
        textwrap.dedent("""
        import os
        from ledgerflow import FlowSpec, step

        class Bomb:
            def __reduce__(self):
                return (os.system, ("touch " + os.environ["BOMB_PATH"],))

        class PickleFlow(FlowSpec):
            @step
            def start(self):
                self.bomb = Bomb()
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            PickleFlow()
    """)
    )
    marker = tmp_path / "exploded"
    import os

    os.environ["BOMB_PATH"] = str(marker)
    try:
        run_flow(flow, db=ledger)
        marker.unlink(missing_ok=True)
        assert search("bomb", ledger=ledger)[0].name == "bomb"
        assert sql("select * from artifacts where name = 'bomb'", ledger=ledger).rows
        assert not marker.exists()
    finally:
        del os.environ["BOMB_PATH"]


def test_sql_reads_views_with_parameters(ledger):
    result = sql(
        "select flow, value from artifacts where name = ? and value > ? order by value desc",
        ["accuracy", 0.6],
        ledger=ledger,
    )
    assert result.columns == ["flow", "value"]
    assert list(result) == [{"flow": "TrainFlow", "value": 0.9}]
    assert len(sql("select * from runs", ledger=ledger)) == 3


@pytest.mark.parametrize("statement", [
    "delete from run",
    "insert into flow(name, created_at) values ('x', 'y')",
    "update run set status = 'failed'",
    "drop view runs",
    "create table evil(x)",
    "pragma user_version = 99",
    "attach database 'elsewhere.db' as other",
    "pragma query_only = 0",
])  # fmt: skip
def test_sql_refuses_writes_at_the_sqlite_level(ledger, statement, tmp_path):
    before = sqlite3.connect(ledger).execute("select count(*), max(status) from run").fetchone()
    with pytest.raises(SQLError):
        sql(statement, ledger=ledger)
    after = sqlite3.connect(ledger).execute("select count(*), max(status) from run").fetchone()
    assert before == after
    assert not (tmp_path / "elsewhere.db").exists()


def test_sql_error_messages(ledger):
    with pytest.raises(SQLError, match="no such table: nope"):
        sql("select * from nope", ledger=ledger)
    with pytest.raises(SQLError, match="placeholders"):
        sql("select ?", ledger=ledger)


def test_cli_search_and_sql(ledger):
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(ledger), "search", "zebra", "--json"])
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)
    assert {h["name"] for h in hits} == {"note", "description"}
    assert set(hits[0]) == {
        "pathspec",
        "flow",
        "run_id",
        "step",
        "task_id",
        "name",
        "snippet",
        "rank",
        "created_at",
        "kind",
    }
    out = runner.invoke(
        cli,
        [
            "--db",
            str(ledger),
            "sql",
            "--json",
            "select flow, count(*) as n from runs group by flow order by flow",
        ],
    )
    assert json.loads(out.output) == [{"flow": "OtherFlow", "n": 1}, {"flow": "TrainFlow", "n": 2}]
    out = runner.invoke(cli, ["--db", str(ledger), "sql", "--csv", "select 1 as a, 'x' as b"])
    assert out.output.splitlines() == ["a,b", "1,x"]
    out = runner.invoke(cli, ["--db", str(ledger), "sql", "delete from run"])
    assert out.exit_code == 1 and "read-only" in out.output and "Traceback" not in out.output
    out = runner.invoke(cli, ["--db", str(ledger), "search", "foo AND ("])
    assert out.exit_code == 1 and "invalid search query" in out.output


def test_python_surface_exports_search_and_sql():
    assert ledgerflow.search is search and ledgerflow.sql is sql


def _plan(conn, sql, params=()):
    return " | ".join(r[3] for r in conn.execute("explain query plan " + sql, params))


def test_a_few_thousand_runs_stay_indexed(tmp_path):
    """2,000 runs written through the ledger API: the documented queries use indexes."""
    from ledgerflow import writes
    from ledgerflow.clock import now_iso
    from ledgerflow.ledger import Ledger
    from ledgerflow.records import TaskRecord
    from ledgerflow.runtime import new_run_id
    from ledgerflow.task import encode_artifact

    db = tmp_path / "big.db"
    ledger = Ledger(db)
    now = now_iso()
    batch = []
    for seed in range(2000):
        run_pk = writes.create_run(ledger, "HistoryFlow", new_run_id(), params={}, user="u",
                                   code=None, script_name=None)  # fmt: skip
        arts, blobs = [], []
        for name, value in (("accuracy", (seed * 7919 % 1000) / 1000),
                            ("notes", f"model resnet{seed % 7} keyword-{seed}")):  # fmt: skip
            record, blob = encode_artifact(name, value, ledger.chunk_size)
            arts.append(record)
            blobs.append(blob)
        batch.append(TaskRecord(run_pk, "train", "1", "succeeded", now, now, artifacts=arts,
                                blobs=blobs))  # fmt: skip
        if len(batch) == 200:
            writes.record_tasks(ledger, batch)
            batch = []
    ledger.close()
    conn = sqlite3.connect(db)
    best = "select run_id, value from artifacts where name = 'accuracy' order by value desc limit 5"
    plan = _plan(conn, best)
    assert "artifact_name_value" in plan and "SCAN a " not in plan + " "
    assert [r[1] for r in sql(best, ledger=db).rows] == [0.999, 0.999, 0.998, 0.998, 0.997]
    above = "select count(*) from artifacts where name = 'accuracy' and value > 0.9"
    assert "artifact_name_value" in _plan(conn, above)
    assert sql(above, ledger=db).rows == [(198,)]
    hits = search("keyword-1234", ledger=db)
    assert [h.run_id for h in hits] and "keyword" in hits[0].snippet
    plan = _plan(
        conn, "select rowid from artifact_fts where artifact_fts match 'x' order by rank limit 20"
    )
    assert "VIRTUAL TABLE INDEX" in plan
    run_plan = _plan(
        conn,
        "select r.id from run r join flow f on f.id = r.flow_id where f.name = ? and r.run_id = ?",
        ("HistoryFlow", "1"),
    )
    assert "run_flow_id_run_id" in run_plan
    conn.close()
