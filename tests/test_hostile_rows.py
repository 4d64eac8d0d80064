"""Hostile ledgers whose rows lie (issue 30 items 4, 8, 10, 11): text in INTEGER columns,
text that is not UTF-8, runs stamped in the future, terminal control sequences in every
name and log. `doctor` reports them, `import` refuses the file with one line naming table,
column and row (nothing written), and no command lets a control sequence reach the
terminal or dies with an internal error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerflow.client import Flow
from ledgerflow.ledger import Ledger

from . import test_hostile as hostile
from .helpers import latest_run_id, query, run_flow
from .test_hostile import FLOW, cli, one_line, sql

their_ledger, marker = hostile.their_ledger, hostile.marker  # the corpus's fixtures


@pytest.fixture
def sent(their_ledger: Path, tmp_path: Path) -> Path:
    path = tmp_path / "sent.db"
    shutil.copy(their_ledger, path)
    return path


def refused_import(sent: Path, tmp_path: Path) -> str:
    mine = tmp_path / "mine.db"
    if not mine.exists():
        Ledger(mine).close()
    before = query(mine, "select count(*) from run")
    error = one_line(cli("import", str(sent), db=mine))
    assert "nothing was written" in error
    assert query(mine, "select count(*) from run") == before
    return error


def doctor_problems(db: Path) -> str:
    proc = cli("doctor", db=db)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


# -- 4 (not the UI). Wrong storage types -------------------------------------------------------


def test_text_in_an_integer_column_is_reported_and_refused(sent, tmp_path):
    payload = "<img src=x onerror=alert(1)>"
    sql(sent, "update artifact set size = ? where name = 'shape'", (payload,))
    (row,) = query(sent, "select min(rowid) from artifact where name = 'shape'")[0]
    assert f"artifact.size holds text where an integer belongs (row {row}," in doctor_problems(sent)
    error = refused_import(sent, tmp_path)
    assert f"artifact.size holds text where an integer belongs (row {row}" in error
    # 11: stats counts what it can and says nothing false (it raised ValueError)
    stats = cli("stats", db=sent)
    assert stats.returncode == 0 and payload not in stats.stdout, stats.stderr
    as_json = json.loads(cli("stats", "--json", db=sent).stdout)
    assert all(isinstance(a["size"], int) for a in as_json["largest_artifacts"])


@pytest.mark.parametrize("damage", [
    "update task set attempt = 'zero' where step = 'end'",
    "update run set pid = x'00ff'",
    "update blob set preview = x'00ff' where rowid = 1",
    "update tag set system = 'yes'",
])  # fmt: skip
def test_every_declared_type_is_checked(sent, tmp_path, damage):
    sql(sent, damage)
    table, column = damage.split()[1], damage.split()[3]
    assert f"{table}.{column} holds" in doctor_problems(sent)
    assert f"{table}.{column} holds" in refused_import(sent, tmp_path)


def test_a_healthy_ledger_has_no_row_problems(db_path):
    from ledgerflow.row_checks import row_problems

    run_flow(FLOW, db=db_path)
    assert row_problems(Ledger.open(db_path).conn) == []


# -- 8. received rows cannot jump the queue ------------------------------------------------------


@pytest.mark.parametrize("stamp,why", [
    ("9999-12-31T23:59:59.999999Z", "is later than now"),
    ("zzzz", "is not a stored timestamp"),
    ("2026-01-01 00:00:00", "is not a stored timestamp"),
])  # fmt: skip
def test_a_run_from_the_future_is_refused_and_never_becomes_my_latest(sent, tmp_path, stamp, why):
    mine = tmp_path / "mine.db"
    run_flow(FLOW, db=mine)
    mine_latest = latest_run_id(mine, "SharedFlow")
    sql(sent, "update run set created_at = ?", (stamp,))
    assert f"run.created_at {why}" in doctor_problems(sent)
    error = refused_import(sent, tmp_path)
    assert f"run.created_at {why}" in error and "(row 1" in error
    from ledgerflow.client import namespace

    namespace(None)
    assert Flow("SharedFlow", ledger=mine).latest_run.id == mine_latest
    assert Flow("SharedFlow", ledger=mine).latest_successful_run.id == mine_latest
    dry = cli("rm", "SharedFlow", "--keep", "1", "--dry-run", db=mine)
    assert dry.returncode == 0 and mine_latest not in dry.stdout


def test_tasks_from_the_future_are_refused(sent, tmp_path):
    sql(sent, "update task set finished_at = '3000-01-01T00:00:00.000000Z' where step = 'end'")
    assert "task.finished_at is later than now" in refused_import(sent, tmp_path)


# -- 11. text that is not UTF-8 ----------------------------------------------------------------


def test_text_that_is_not_utf8_is_one_line_everywhere(sent, tmp_path):
    sql(sent, "update artifact set name = cast(x'41ff1b5d30' as text) where name = 'result'")
    run_id = latest_run_id(sent, "SharedFlow")
    (task_id,) = query(sent, "select task_id from tasks where step = 'work' limit 1")[0]
    for args in (["show", f"SharedFlow/{run_id}/work/{task_id}"], ["stats"]):
        error = one_line(cli(*args, db=sent))
        assert "not valid UTF-8" in error and "Internal error" not in error, error
        assert "\x1b" not in error
    assert "artifact.name holds text that is not valid UTF-8" in doctor_problems(sent)
    assert "artifact.name holds text that is not valid UTF-8" in refused_import(sent, tmp_path)


# -- 10. control sequences never reach the terminal ----------------------------------------------

EVIL = "\x1b]0;pwned\x07\x1b[31m\x9b2J"


def test_control_sequences_in_names_logs_and_errors_are_escaped(sent, tmp_path):
    sql(sent, "update artifact set name = name || ? where name = 'result'", (EVIL,))
    sql(sent, "update task set step = step || ? where step = 'work'", (EVIL,))
    sql(sent, "update log set text = text || ? || 'over' || char(13) || 'written'", (EVIL,))
    sql(sent, "update task set exception_type = 'ValueError', exception = ? where step = 'end'",
        (f"boom{EVIL}",))  # fmt: skip
    sql(sent, "insert into tag(run_id, tag, system) select id, ?, 0 from run", (f"t{EVIL}",))
    run = f"SharedFlow/{latest_run_id(sent, 'SharedFlow')}"
    work = f"{run}/work{EVIL}"
    (task_id,) = query(sent, "select task_id from tasks where step like 'work%' limit 1")[0]
    mine = tmp_path / "mine.db"
    Ledger(mine).close()
    commands = [
        (["runs"], sent), (["show", run], sent), (["show", f"{work}/{task_id}"], sent),
        (["logs", run], sent), (["diff", run, run], sent), (["stats"], sent),
        (["doctor"], sent), (["search", "pwned"], sent), (["search", "boom", "--kind",
        "exception"], sent), (["show", f"{work}/{task_id}/shape", "--load"], sent),
        (["show", f"{work}/{task_id}/nothing{EVIL}"], sent), (["import", str(sent)], mine),
        (["rm", run, "--dry-run"], mine), (["logs", run], mine),
    ]  # fmt: skip
    flow = [sys.executable, str(FLOW), "--db", str(sent)]
    run_id = run.split("/")[1]
    for args in [*([sys.executable, "-m", "ledgerflow", "--db", str(db), *args]
                   for args, db in commands),
                 [*flow, "logs", f"{run_id}/end"], [*flow, "tag", "list", "--run-id", run_id],
                 [*flow, "show"]]:  # fmt: skip
        proc = subprocess.run(args, capture_output=True, timeout=120)  # bytes: nothing hidden
        out = proc.stdout + proc.stderr
        assert b"Traceback" not in out and b"Internal error" not in out, (args, out)
        for control in (b"\x1b", b"\x07", "\x9b".encode(), b"\r"):
            assert control not in out, (args, out)
        if args[-2:] == ["logs", f"{run_id}/end"]:
            assert b"\\x1b]0;pwned\\x07" in out and b"over\nwritten" in out
    raw = subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(sent), "logs", run,
                          "--raw"], capture_output=True, timeout=60)  # fmt: skip
    assert raw.returncode == 0 and f"{EVIL}over\rwritten".encode() in raw.stdout
