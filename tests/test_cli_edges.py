"""The `ledgerflow` command as a user meets it (issue 15): closed pipes, bare run ids, flow
name typos, rm/gc --dry-run and confirmation, diff values, CSV line ends, times with their
zone, `logs`, log and exception search, doctor naming what a damaged blob breaks, and the
ledger every library call reads. Real flows, run by the real command line."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import ledgerflow
from ledgerflow.cli.main import cli
from ledgerflow.ledger import Ledger
from tests.helpers import FLOWS, query
from tests.test_logs import as_schema_7

CLI_FLOW = FLOWS / "cli" / "cli_flow.py"
PICKLED_FLOW = """
import datetime
from ledgerflow import FlowSpec, Parameter, step

class DateFlow(FlowSpec):
    day = Parameter("day", default=1)

    @step
    def start(self):
        self.when = datetime.date(2020, 1, int(self.day))  # a pickle: never loaded by diff
        self.note = "x" * 300 if int(self.day) > 1 else "short"  # JSON, but too long to show
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    DateFlow()
"""


def _run(flow: Path, db: Path, *args: str, code: int = 0) -> str:
    """Run a flow; its run id."""
    proc = subprocess.run(
        [sys.executable, str(flow), "--db", str(db), "--quiet", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == code, proc.stderr
    return query(db, "select run_id from runs order by created_at desc limit 1")[0][0]


@pytest.fixture(scope="module")
def lf(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("edges")
    db = folder / "ledgerflow.db"
    dates = folder / "date_flow.py"
    dates.write_text(PICKLED_FLOW)
    return SimpleNamespace(
        db=db, a=_run(CLI_FLOW, db, "--tag", "keep"), failed=_run(CLI_FLOW, db, "--fail", "true",
                                                                  code=1),
        b=_run(CLI_FLOW, db, "--n", "4", "--alpha", "0.7"),
        d1=_run(dates, db), d2=_run(dates, db, "--day", "2"),
    )  # fmt: skip


def invoke(db: Path, *args: str, code: int = 0, input: str | None = None):
    result = CliRunner().invoke(cli, ["--db", str(db), *args], input=input,
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def _ledgerflow(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ledgerflow.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # fmt: skip


# -- closed pipes ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["runs"], ["runs", "--json"], ["show", "CliFlow"],
                                  ["sql", "select * from tasks"],
                                  ["sql", "--csv", "select * from tasks"],
                                  ["logs", "CliFlow/{a}"], ["search", "fan"],
                                  ["diff", "{a}", "{a}"], ["stats"]])  # fmt: skip
def test_a_closed_pipe_ends_quietly_with_exit_0(lf, args):
    """`ledgerflow runs | head -1`: the reader has gone before we write."""
    args = [a.replace("{a}", lf.a) for a in args]
    proc = _ledgerflow("--db", str(lf.db), *args)
    proc.stdout.close()  # the reader goes away before the command writes a line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Error" not in err and "Traceback" not in err and "Exception" not in err


def test_a_closed_pipe_ends_the_flow_commands_quietly_too(lf):
    proc = subprocess.Popen(
        [sys.executable, str(CLI_FLOW), "--db", str(lf.db), "logs", f"{lf.a}/start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Error" not in err and "Traceback" not in err


# -- naming runs and flows ---------------------------------------------------------------


def test_a_bare_run_id_names_a_run_wherever_a_run_is_named(lf):
    assert json.loads(invoke(lf.db, "show", lf.a, "--json").stdout)["pathspec"] == f"CliFlow/{lf.a}"
    task = json.loads(invoke(lf.db, "show", f"{lf.a}/start/1", "--json").stdout)
    assert task["kind"] == "task" and task["pathspec"] == f"CliFlow/{lf.a}/start/1"
    assert "hello from start" in invoke(lf.db, "logs", f"{lf.a}/start").stdout
    out = invoke(lf.db, "export", lf.a, "--to", str(lf.db.parent / "one.db")).stdout
    assert f"copied   CliFlow/{lf.a}" in out
    err = invoke(lf.db, "show", "123456789", code=1).stderr
    assert "no flow in ledger" in err and "'123456789'" in err


@pytest.mark.parametrize("args", [["runs", "CliFlo"], ["show", "cliflow"],
                                  ["show", "CliFlw/1"], ["diff", "CliFlo/1", "CliFlow/2"],
                                  ["search", "x", "--flow", "CliFlo"], ["logs", "ClFlow/1"],
                                  ["rm", "CliFlo", "--keep", "0", "--yes"],
                                  ["export", "CliFlo", "--to", "x.db"]])  # fmt: skip
def test_a_misspelt_flow_is_an_error_naming_the_closest(lf, args):
    result = invoke(lf.db, *args, code=1)
    assert result.stdout == ""
    assert re.fullmatch(r"Error: \S+ does not exist in ledger .*: there is no flow named "
                        r"'\w+'; did you mean 'CliFlow'\? \(flows there: CliFlow, DateFlow\)\n",
                        result.stderr), result.stderr  # fmt: skip


def test_show_lists_a_runs_parameters_and_runs_can_too(lf):
    text = invoke(lf.db, "show", lf.b).stdout.splitlines()
    assert text[1] == "Parameters: alpha=0.7 fail=false n=4"
    assert json.loads(invoke(lf.db, "show", lf.b, "--json").stdout)["params"] == {
        "alpha": 0.7,
        "fail": False,
        "n": 4,
    }
    lines = invoke(lf.db, "runs", "CliFlow", "--params").stdout.splitlines()
    assert lines[0].split()[-1] == "PARAMS"
    assert lines[1].endswith("alpha=0.7 fail=false n=4")  # newest first
    assert "PARAMS" not in invoke(lf.db, "runs").stdout


# -- diff values -----------------------------------------------------------------------


def test_diff_shows_old_and_new_plain_values_and_sizes_and_shas_for_the_rest(lf):
    lines = invoke(lf.db, "diff", lf.d1, lf.d2).stdout.splitlines()
    assert "  day: 1 -> 2" in lines
    when = next(line for line in lines if line.startswith("  when: "))
    assert re.fullmatch(r"  when: pickle, \d+ bytes, sha [0-9a-f]{12} -> pickle, \d+ bytes, "
                        r"sha [0-9a-f]{12}", when)  # fmt: skip
    note = next(line for line in lines if line.startswith("  note: "))
    assert re.fullmatch(r"  note: json, 7 bytes, sha \w{12} -> json, 302 bytes, sha \w{12}", note)
    doc = json.loads(invoke(lf.db, "diff", lf.d1, lf.d2, "--json").stdout)
    values = doc["steps"][0]["tasks"][0]["values"]
    assert values["day"]["a"]["json"] == "1" and values["day"]["b"]["json"] == "2"
    assert "json" not in values["when"]["a"] and values["when"]["a"]["encoding"] == "pickle"


def test_diff_never_unpickles(lf, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("diff unpickled a value")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    invoke(lf.db, "diff", lf.d1, lf.d2)


# -- rm and gc -----------------------------------------------------------------------------


def _copy(db: Path, to: Path) -> Path:
    src, dst = sqlite3.connect(db), sqlite3.connect(to)
    src.backup(dst)
    src.close()
    dst.close()
    return to


def test_rm_dry_run_deletes_nothing_and_says_what_would_go(lf, tmp_path):
    db = _copy(lf.db, tmp_path / "copy.db")
    before = query(db, "select count(*) from run")
    out = invoke(db, "rm", "CliFlow", "--keep", "1", "--dry-run").stdout.splitlines()
    assert out[:2] == [f"would delete CliFlow/{lf.failed}", f"would delete CliFlow/{lf.a}"]
    assert re.fullmatch(r"2 run\(s\) would be deleted; `ledgerflow gc` would then free \d+ "
                        r"blob\(s\), [\d.]+ k?B stored", out[2]), out[2]  # fmt: skip
    assert query(db, "select count(*) from run") == before


def test_rm_of_several_runs_asks_unless_yes(lf, tmp_path):
    db = _copy(lf.db, tmp_path / "copy.db")
    # Not a terminal: nobody to ask, so refuse and say how.
    result = invoke(db, "rm", "CliFlow", "--keep", "0", code=2)
    assert "rm would delete 3 runs; pass --yes" in result.stderr
    assert query(db, "select count(*) from runs where flow = 'CliFlow'") == [(3,)]
    # One named run needs no confirmation.
    invoke(db, "rm", f"CliFlow/{lf.failed}")
    assert query(db, "select count(*) from runs where flow = 'CliFlow'") == [(2,)]
    invoke(db, "rm", "CliFlow", "--keep", "0", "--yes")
    assert query(db, "select count(*) from runs where flow = 'CliFlow'") == [(0,)]


def test_rm_asks_on_a_terminal(lf, tmp_path, monkeypatch):
    db = _copy(lf.db, tmp_path / "copy.db")
    monkeypatch.setattr("ledgerflow.cli.upkeep_cmds._interactive", lambda: True)
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", str(db), "rm", "CliFlow", "--keep", "0"], input="n\n")
    assert result.exit_code == 1 and "Delete these 3 runs?" in result.output
    assert query(db, "select count(*) from runs where flow = 'CliFlow'") == [(3,)]
    result = runner.invoke(cli, ["--db", str(db), "rm", "CliFlow", "--keep", "0"], input="y\n")
    assert result.exit_code == 0, result.output
    assert query(db, "select count(*) from runs where flow = 'CliFlow'") == [(0,)]


def test_gc_dry_run_reports_what_gc_then_frees(lf, tmp_path):
    db = _copy(lf.db, tmp_path / "copy.db")
    invoke(db, "rm", "DateFlow", "--yes")
    unused = query(db, "select count(*), sum(stored_size) from blob where sha not in "
                       "(select sha from artifact)")[0]  # fmt: skip
    assert unused[0] > 0
    out = invoke(db, "gc", "--dry-run").stdout
    assert out.startswith(f"{unused[0]} blob(s) would be deleted, {unused[1]} B stored")
    assert query(db, "select count(*) from blob where sha not in (select sha from artifact)") == [
        (unused[0],)
    ]
    assert invoke(db, "gc").stdout.startswith(f"{unused[0]} blob(s) deleted")


# -- output formats and times -------------------------------------------------------------


def test_sql_csv_lines_end_with_lf(lf):
    proc = _ledgerflow("--db", str(lf.db), "sql", "--csv", "select 1 as a, 'x' as b")
    out, _ = proc.communicate(timeout=60)
    assert out == b"a,b\n1,x\n"


def test_times_on_screen_are_local_with_their_offset_and_utc_in_json(lf, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30, no summer time
    time.tzset()
    try:
        stored = query(lf.db, "select created_at from runs where run_id = ?", (lf.a,))[0][0]
        assert stored.endswith("Z")
        from datetime import datetime, timedelta

        local = datetime.fromisoformat(stored) + timedelta(hours=5.5)
        shown = f"{local:%Y-%m-%d %H:%M:%S} +05:30"
        assert f"started {shown}" in invoke(lf.db, "show", lf.a).stdout
        row = next(line for line in invoke(lf.db, "runs").stdout.splitlines() if lf.a in line)
        assert shown in row
        assert json.loads(invoke(lf.db, "show", lf.a, "--json").stdout)["created_at"] == stored
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# -- logs and search -------------------------------------------------------------------------


def test_logs_reads_a_shared_ledger_without_the_flow_file(lf):
    result = invoke(lf.db, "logs", f"CliFlow/{lf.a}/start/1")
    assert result.stdout == "hello from start\nwarning from start\n"
    assert f"Logs of CliFlow/{lf.a}/start/1 (attempt 0)" in result.stderr
    assert (
        invoke(lf.db, "logs", f"CliFlow/{lf.a}/start", "--stderr").stdout == "warning from start\n"
    )
    every = invoke(lf.db, "logs", f"CliFlow/{lf.a}", "--stdout").stdout
    assert every == "hello from start\nfan 0\nfan 1\nfan 2\ndone\n"  # graph order, then ids
    err = invoke(lf.db, "logs", f"CliFlow/{lf.a}/nope", code=1).stderr
    assert "nope" in err and err.count("\n") == 1


def test_show_task_prints_the_tail_of_its_logs(lf):
    out = invoke(lf.db, "show", f"CliFlow/{lf.failed}/fan/4").stdout
    assert "Exception: builtins.ValueError: boom in fan" in out
    tail = out.split(f"stderr (last 10 lines; all: ledgerflow logs CliFlow/{lf.failed}/fan/4):\n")
    assert tail[1].rstrip().endswith("ValueError: boom in fan")
    doc = json.loads(invoke(lf.db, "show", f"CliFlow/{lf.a}/start/1", "--json").stdout)
    assert (doc["stdout_tail"], doc["stderr_tail"]) == (
        "hello from start\n",
        "warning from start\n",
    )


def test_search_finds_logs_and_exceptions_with_a_kind_filter(lf):
    hits = json.loads(invoke(lf.db, "search", "boom", "--json").stdout)
    assert {(h["pathspec"], h["kind"], h["name"]) for h in hits} == {
        (f"CliFlow/{lf.failed}/fan/4", "exception", "exception"),
        (f"CliFlow/{lf.failed}/fan/4", "log", "stderr"),
    }
    only = json.loads(invoke(lf.db, "search", "boom", "--kind", "exception", "--json").stdout)
    assert [h["snippet"] for h in only] == ["builtins.ValueError: [boom] in fan"]
    logs = ledgerflow.search("hello", kind="log", ledger=lf.db)
    assert {h.pathspec for h in logs} == {f"CliFlow/{r}/start/1" for r in (lf.a, lf.b, lf.failed)}
    ledgerflow.namespace(None)
    assert logs[0].artifact is None and logs[0].task.pathspec == logs[0].pathspec
    assert ledgerflow.search("hello", kind="artifact", ledger=lf.db) == []
    fan = ledgerflow.search("fan", flow="CliFlow", step="fan", limit=100, ledger=lf.db)
    assert {h.kind for h in fan} == {"artifact", "log", "exception"}
    assert {h.step for h in fan} == {"fan"}
    assert invoke(lf.db, "search", "boom", "--kind", "artifact").stdout == "No matches.\n"
    text = invoke(lf.db, "search", "boom", "--kind", "log").stdout
    assert text.startswith(f"CliFlow/{lf.failed}/fan/4 (stderr)\n    ")


def test_rm_and_import_keep_the_log_index_in_step(lf, tmp_path):
    db = _copy(lf.db, tmp_path / "copy.db")
    invoke(db, "rm", f"CliFlow/{lf.failed}")
    assert ledgerflow.search("boom", ledger=db) == []
    assert query(db, "select count(*) from task_fts where rowid / 4 not in "
                     "(select id from task)") == [(0,)]  # fmt: skip
    other = tmp_path / "other.db"
    invoke(other, "import", str(lf.db))
    assert {h.kind for h in ledgerflow.search("boom", ledger=other)} == {"log", "exception"}


def test_a_ledger_from_before_the_log_index_is_indexed_when_opened(lf, tmp_path):
    db = _copy(lf.db, tmp_path / "old.db")
    as_schema_7(db)  # logs back in log.text (test_logs.py)
    conn = sqlite3.connect(db)
    conn.execute("drop table task_fts")
    conn.execute("pragma user_version = 1")
    conn.commit()
    conn.close()
    assert ledgerflow.search("boom", ledger=db) == []  # not migrated yet: artifacts only
    Ledger.open(db)  # opening with write access migrates
    assert {h.kind for h in ledgerflow.search("boom", ledger=db)} == {"log", "exception"}


def test_doctor_repair_rebuilds_the_log_index(lf, tmp_path):
    db = _copy(lf.db, tmp_path / "copy.db")
    conn = sqlite3.connect(db)
    conn.execute("delete from task_fts")  # only the log index: doctor must notice that too
    conn.execute("insert into log_fts(log_fts) values ('delete-all')")  # logs, since schema 8
    conn.commit()
    conn.close()
    assert "search index has 0 entries for " in invoke(db, "doctor", code=1).stdout
    invoke(db, "doctor", "--repair")
    invoke(db, "doctor")  # healthy again
    assert {h.kind for h in ledgerflow.search("boom", ledger=db)} == {"log", "exception"}


# -- doctor ------------------------------------------------------------------------------


def test_doctor_names_what_uses_a_damaged_blob(lf, tmp_path):
    db = _copy(lf.db, tmp_path / "copy.db")
    (sha,) = query(db, "select sha from artifacts where run_id = ? and name = 'when'",
                   (lf.d1,))[0]  # fmt: skip
    conn = sqlite3.connect(db)
    conn.execute("update blob_chunk set data = zeroblob(length(data)) where sha = ?", (sha,))
    conn.commit()
    conn.close()
    result = invoke(db, "doctor", code=1)
    line = next(x for x in result.stdout.splitlines() if sha[:12] in x)
    assert line.endswith(f"used by DateFlow/{lf.d1}/start/1/when")
    doc = json.loads(invoke(db, "doctor", "--json", code=1).stdout)
    assert doc["damaged_blobs"] == [{"sha": sha, "used_by": [f"DateFlow/{lf.d1}/start/1/when"]}]


# -- which ledger a library call reads ------------------------------------------------------


def test_sql_and_search_follow_use_ledger(lf, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_DB", str(tmp_path / "elsewhere.db"))  # not there
    ledgerflow.use_ledger(lf.db)
    assert ledgerflow.sql("select count(*) as n from runs")[0]["n"] == 5
    assert ledgerflow.search("boom", kind="exception")
    ledgerflow.use_ledger(lf.db.parent)  # a folder holding ledgerflow.db, as the client takes
    assert ledgerflow.sql("select count(*) as n from runs")[0]["n"] == 5
    ledgerflow.use_ledger(None)
    with pytest.raises(ledgerflow.MetaflowException, match="no ledger at"):
        ledgerflow.sql("select 1")
    assert os.environ["LEDGERFLOW_DB"].endswith("elsewhere.db")


def test_export_and_import_report_their_progress(lf, tmp_path):
    from ledgerflow.sharing import export_runs, import_ledger

    calls: list[tuple[int, int]] = []
    import_ledger(lf.db, ledger=tmp_path / "mine.db", progress=lambda *a: calls.append(a))
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    calls.clear()
    export_runs(["CliFlow"], tmp_path / "out.db", ledger=lf.db,
                progress=lambda *a: calls.append(a))  # fmt: skip
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_run_whose_reader_went_away_still_succeeds_and_keeps_its_logs(tmp_path, executor):
    """`python flow.py run | head -1`: the tasks' print() must not fail on the echo."""
    db = tmp_path / "piped.db"
    proc = subprocess.Popen([sys.executable, str(CLI_FLOW), "--db", str(db), "run",
                             "--executor", executor], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout.readline().startswith(b"ledgerflow ")  # as `head -1` does
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert query(db, "select status from runs") == [("succeeded",)]
    assert (
        invoke(
            db, "logs", f"CliFlow/{query(db, 'select run_id from runs')[0][0]}/start", "--stdout"
        ).stdout
        == "hello from start\n"
    )


def test_the_readme_says_how_to_reach_the_venv_before_using_it():
    """After the two set-up commands, a reader's next `python ...` or `ledgerflow ...` must
    find the install: the README says to activate .venv (or to prefix .venv/bin/) first."""
    from tests.helpers import ROOT

    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    first_bare = min(text.index(b) for b in blocks
                     if re.search(r"^(python|ledgerflow) ", b, flags=re.MULTILINE))  # fmt: skip
    assert -1 < text.find(". .venv/bin/activate") < first_bare
    # Options the README shows are where the command line takes them.
    assert "tag list --quiet" not in text and "--quiet tag list" in text


def test_a_broken_pipe_that_is_not_our_output_is_an_error(tmp_path):
    """Only a closed stdout/stderr ends quietly: a BrokenPipeError from anything else (a
    socket to a helper process) is reported, exit 1, never taken for `| head`."""
    code = ("from ledgerflow.cli.errors import call_reporting_errors\n"
            "def fail():\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "call_reporting_errors(fail, debug=False)\n")  # fmt: skip
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.run([sys.executable, "-c", code], stdout=out, stderr=subprocess.PIPE,
                              text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert "Internal error: BrokenPipeError" in proc.stderr and "Traceback" not in proc.stderr
