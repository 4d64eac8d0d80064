"""Every bad input gets one clear line, the right exit code, no traceback, and no damage.

A table of cases across the surfaces: invalid graphs, the flow command line, run-time
errors in steps, the `ledgerflow` command, and the Python API."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys

import pytest

from .helpers import EXAMPLES, FLOWS, query, run_flow

BAD = FLOWS / "bad"
RUNTIME = BAD / "runtime_errors.py"
GOOD = EXAMPLES / "artifact_example.py"

# (case id, flow file, arguments after the flow file, exit code, text the error must contain)
FLOW_CASES = [
    ("no start step", BAD / "no_start.py", ["run"], 1, "no 'start' step"),
    ("no end step", BAD / "no_end.py", ["run"], 1, "no 'end' step"),
    ("step without self.next", BAD / "missing_next.py", ["run"], 1, "does not end with self.next()"),
    ("join without inputs", BAD / "join_without_inputs.py", ["run"], 1, "join"),
    ("unknown target", BAD / "unknown_target.py", ["run"], 1, "'middle', which is not a step"),
    ("unreachable step", BAD / "unreachable.py", ["run"], 1, "'orphan' is unreachable"),
    ("foreach on a missing attribute", BAD / "foreach_missing_attr.py", ["run"], 1,
     "no step sets self.nothing_here"),
    ("self.next twice", BAD / "next_twice.py", ["run"], 1, "calls self.next() 2 times"),
    ("end step with self.next", BAD / "end_with_next.py", ["run"], 1, "'end'"),
    ("split never joined", BAD / "unjoined_split.py", ["run"], 1, "is joined"),
    ("lint via check", BAD / "unreachable.py", ["check"], 1, "unreachable"),
    ("decorator attribute it does not take", BAD / "decorator_attribute.py", ["run"], 1,
     "decorator_attribute.py:7: Decorator '@retry' does not support the attribute 'tims'"),
    ("@reuse given a string", BAD / "reuse_value.py", ["run"], 1,
     "reuse_value.py:11: @reuse takes True or False, not 'no'"),
    ("unknown option", GOOD, ["run", "--nope", "1"], 2, "No such option '--nope'"),
    ("unknown command", GOOD, ["fly"], 2, "No such command 'fly'"),
    ("mistyped parameter", RUNTIME, ["run", "--case"], 2, "requires an argument"),
    ("max-workers zero", GOOD, ["run", "--max-workers", "0"], 2, "--max-workers"),
    ("unknown executor", GOOD, ["run", "--executor", "gpu"], 2, "'gpu' is not one of"),
    ("missing required parameter", FLOWS / "engine" / "params.py", ["run"], 2,
     "Missing option '--must'"),
    ("parameter of the wrong type", FLOWS / "engine" / "params.py",
     ["run", "--must", "x"], 2, "'x' is not a valid integer"),
    ("invalid JSON parameter", FLOWS / "engine" / "params.py",
     ["run", "--must", "1", "--config", "[1,"], 2, "is not valid JSON"),
    ("IncludeFile path missing", FLOWS / "engine" / "params.py",
     ["run", "--must", "1", "--notes", "/no/such/file.txt"], 2, "/no/such/file.txt"),
    ("invalid tag", GOOD, ["run", "--tag", ""], 2, "tag"),
    ("foreach over a non-iterable", RUNTIME, ["run", "--case", "not_iterable"], 1,
     "a int, which is not iterable"),
    ("foreach over an empty list", RUNTIME, ["run", "--case", "empty"], 1, "zero splits"),
    ("foreach too wide", RUNTIME, ["run", "--case", "too_wide"], 1, "--max-num-splits"),
    ("unpicklable artifact", RUNTIME, ["run", "--case", "unpicklable"], 1,
     "cannot store artifact 'lock'"),
    ("artifact named like a FlowSpec attribute", RUNTIME, ["run", "--case", "reserved"], 1,
     "'input' is reserved by FlowSpec"),
    ("assigning a parameter", RUNTIME, ["run", "--case", "set_param"], 1,
     "parameters are read-only"),
    ("switch value with no case", RUNTIME, ["run", "--case", "switch"], 1, "matches no case"),
    ("merge conflict", RUNTIME, ["run", "--case", "conflict"], 1, "conflicting values"),
    ("resume with nothing to resume", GOOD, ["resume"], 1, "no run of ArtifactExample"),
    ("resume of an unknown step", RUNTIME, ["resume", "nosuch"], 1, "no step 'nosuch'"),
    ("logs of a malformed pathspec", GOOD, ["logs", "a/b/c/d/e"], None, ""),
    ("dump of a missing run", GOOD, ["dump", "123/start"], 1, "ArtifactExample/123"),
]  # fmt: skip


def _one_clear_error(proc: subprocess.CompletedProcess[str], code: int | None, text: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    if code is None:
        assert proc.returncode in (1, 2), proc.stderr
    else:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert text in proc.stderr, proc.stderr


@pytest.mark.parametrize("case, flow, args, code, text", FLOW_CASES,
                         ids=[c[0] for c in FLOW_CASES])  # fmt: skip
def test_flow_command_line(case, flow, args, code, text, db_path):
    if case.startswith("resume of"):
        run_flow(RUNTIME, db=db_path)
    if case.startswith("dump of"):
        run_flow(GOOD, db=db_path)
    proc = subprocess.run([sys.executable, str(flow), "--db", str(db_path), *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    _one_clear_error(proc, code, text)
    if (
        case in ("missing required parameter", "mistyped parameter", "unknown option")
        and db_path.exists()
    ):
        assert query(db_path, "select count(*) from run") == [(0,)]
    if db_path.exists():
        assert query(db_path, "pragma integrity_check") == [("ok",)]


def test_a_definition_error_shows_its_traceback_with_debug(db_path):
    proc = subprocess.run([sys.executable, str(BAD / "decorator_attribute.py"), "--db",
                           str(db_path), "run", "--debug"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "InvalidDecoratorAttribute" in proc.stderr


def _ledgerflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledgerflow.cli", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.fixture
def ledger(db_path):
    run_flow(GOOD, db=db_path)
    return db_path


def _corrupt(path, how: str):
    if how == "not sqlite":
        path.write_text("just some notes\n" * 100)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif how == "future schema":
        conn = sqlite3.connect(path)
        conn.execute("pragma user_version = 999")
        conn.commit()
        conn.close()


LEDGER_CASES = [
    ("nonexistent run", ["show", "ArtifactExample/42"], 1, "ArtifactExample/42"),
    ("malformed pathspec", ["show", "a/b/c/d/e/f"], None, "pathspec"),
    ("nonexistent flow", ["runs", "NoSuchFlow"], 1, "there is no flow named 'NoSuchFlow'"),
    ("misspelt flow", ["runs", "ArtifactExampel"], 1, "did you mean 'ArtifactExample'?"),
    ("misspelt flow in show", ["show", "artifactexample"], 1, "did you mean 'ArtifactExample'?"),
    ("misspelt flow in search", ["search", "x", "--flow", "ArtifactExampl"], 1,
     "did you mean 'ArtifactExample'?"),
    ("misspelt flow in rm", ["rm", "ArtifactExampl", "--yes"], 1,
     "did you mean 'ArtifactExample'?"),
    ("misspelt flow in export", ["export", "ArtifactExampl", "--to", "{tmp}/x.db"], 1,
     "did you mean 'ArtifactExample'?"),
    ("logs of a flow", ["logs", "ArtifactExample"], 2, "give a run, step or task"),
    ("unknown search kind", ["search", "x", "--kind", "blob"], 2, "--kind"),
    ("write SQL", ["sql", "delete from run"], 1, "read-only"),
    ("SQL syntax error", ["sql", "selec * from runs"], 1, "SQL error"),
    ("malformed FTS query", ["search", "foo AND ("], 1, "invalid search query"),
    ("empty FTS query", ["search", " "], 1, "empty search query"),
    ("diff of unknown runs", ["diff", "A/1", "A/2"], 1, "A/1"),
    ("import into itself", ["import", "{db}"], 1, "into itself"),
    ("import of a missing file", ["import", "/no/such.db"], 1, "/no/such.db"),
    ("export to an existing file", ["export", "ArtifactExample", "--to", "{db}"], 1,
     "already exists"),
    ("export of an unknown flow", ["export", "Nope", "--to", "{tmp}/x.db"], 1, "Nope"),
    ("rm of an unknown run", ["rm", "ArtifactExample/1", "--yes"], 1, "ArtifactExample/1"),
    ("bad rm date", ["rm", "ArtifactExample", "--older-than", "yesterday"], 1, "not a date"),
    ("limit zero", ["runs", "--limit", "0"], 2, "--limit"),
    ("unknown command", ["frobnicate"], 2, "No such command"),
]  # fmt: skip


@pytest.mark.parametrize("case, args, code, text", LEDGER_CASES, ids=[c[0] for c in LEDGER_CASES])
def test_ledger_command_line(case, args, code, text, ledger, tmp_path):
    args = [a.replace("{db}", str(ledger)).replace("{tmp}", str(tmp_path)) for a in args]
    before = query(ledger, "select count(*) from run")
    proc = _ledgerflow("--db", str(ledger), *args)
    if code == 0:
        assert proc.returncode == 0, proc.stderr
    else:
        _one_clear_error(proc, code, text)
    assert query(ledger, "select count(*) from run") == before
    assert query(ledger, "pragma integrity_check") == [("ok",)]


@pytest.mark.parametrize("how, text", [
    ("not sqlite", "not a ledgerflow ledger"),
    ("truncated", "ledger"),
    ("future schema", "newer than this ledgerflow understands"),
])  # fmt: skip
def test_broken_ledger_files(how, text, ledger, tmp_path):
    broken = tmp_path / "broken.db"
    shutil.copy(ledger, broken)
    from ledgerflow.ledger import Ledger

    Ledger.forget(ledger)
    _corrupt(broken, how)
    for proc in (_ledgerflow("--db", str(broken), "runs"),
                 run_flow(GOOD, db=broken, check=None, top=())):  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr and text in proc.stderr, proc.stderr


def test_missing_ledger_is_not_created_by_reads(tmp_path):
    path = tmp_path / "nothing.db"
    proc = _ledgerflow("--db", str(path), "runs")
    assert proc.returncode == 1 and "no ledger at" in proc.stderr
    assert not path.exists()


PYTHON_CASES = [
    ("Run('OnlyFlow')", "MetaflowInvalidPathspec"),
    ("Run('NoSuchFlow/1')", "MetaflowNotFound"),
    ("Task('A/1/start')", "MetaflowInvalidPathspec"),
    ("DataArtifact('ArtifactExample/1/start/1/x')", "MetaflowNotFound"),
    ("search('foo AND (')", "SearchError"),
    ("sql('drop table run')", "SQLError"),
    ("sql('select ?')", "SQLError"),
    ("FlowSpec(use_cli=False).next()", "InvalidNextException"),
    ("Parameter('bad name!')", "ParameterError"),
    ("Parameter('tag')", "ParameterError"),
    ("retry(times=-1)", "LedgerflowError"),
    ("timeout(seconds=0)", "LedgerflowError"),
    ("metadata('service@https://example.com')", "LedgerflowError"),
]  # fmt: skip


@pytest.mark.parametrize("expr, error", PYTHON_CASES, ids=[c[0] for c in PYTHON_CASES])
def test_python_api(expr, error, ledger):
    import ledgerflow
    from ledgerflow import namespace

    # The names the expressions use (eval() needs them in scope).
    scope = {name: getattr(ledgerflow, name) for name in (
        "DataArtifact", "FlowSpec", "Parameter", "Run", "Task", "metadata", "retry", "search",
        "sql", "timeout")}  # fmt: skip

    namespace(None)
    ledgerflow.use_ledger(ledger)
    try:
        with pytest.raises(Exception) as info:
            eval(expr, scope)
        assert type(info.value).__name__ == error or error in [
            c.__name__ for c in type(info.value).__mro__
        ], repr(info.value)
        assert str(info.value) and "\n" not in str(info.value).split(". ")[0]
    finally:
        ledgerflow.use_ledger(None)


def test_a_corrupted_blob_is_detected_on_load(ledger):
    from ledgerflow import Run, namespace
    from ledgerflow.exceptions import CorruptBlobError
    from ledgerflow.ledger import Ledger

    namespace(None)
    run_id = query(ledger, "select run_id from runs")[0][0]
    sha = query(ledger, "select sha from artifacts where name = 'metadata'")[0][0]
    Ledger.forget(ledger)
    conn = sqlite3.connect(ledger)
    conn.execute(
        "update blob_chunk set data = (select data from blob_chunk where sha != ? "
        "limit 1) where sha = ?",
        (sha, sha),
    )
    conn.commit()
    conn.close()
    with pytest.raises(CorruptBlobError, match="run `ledgerflow doctor`"):
        Run(f"ArtifactExample/{run_id}", ledger=ledger)["start"].task.data.metadata
