"""The flow command line (`python flow.py ...`) beyond `run`: tag, logs, dump, exit codes.

The module fixture runs tests/flows/cli/cli_flow.py a few times, at once, into one ledger;
each test then calls the real command line in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ledgerflow.client import Run, get_namespace, namespace
from tests.helpers import FLOWS, query, run_flow

FLOW = FLOWS / "cli" / "cli_flow.py"


def _start(db: Path, name: str, *args: str) -> tuple[subprocess.Popen[str], Path]:
    id_file = db.parent / f"{name}.runid"
    cmd = [sys.executable, str(FLOW), "--db", str(db), "--quiet", "run",
           "--run-id-file", str(id_file), *args]  # fmt: skip
    env = {**os.environ, "METAFLOW_USER": "tester"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    return proc, id_file


def _finish(started: tuple[subprocess.Popen[str], Path], code: int = 0) -> str:
    proc, id_file = started
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (out, err)
    run_id = id_file.read_text()
    if code == 0:  # --quiet prints the run id and nothing else
        assert out == f"{run_id}\n"
    return run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """CliFlow: a plain run, a failed one (fan[2] raises), and one only the tag test changes."""
    db = tmp_path_factory.mktemp("cli_flow") / "ledgerflow.db"
    ok, failed, tagged = (_start(db, "ok"), _start(db, "failed", "--fail", "true"),
                          _start(db, "tagged", "--tag", "keep", "--tag", "drop"))  # fmt: skip
    return SimpleNamespace(db=db, ok=_finish(ok), failed=_finish(failed, code=1),
                           tagged=_finish(tagged))  # fmt: skip


def cli(runs: SimpleNamespace, command: str, *args: str, check: int | None = 0,
        quiet: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return run_flow(FLOW, *args, db=runs.db, command=command, check=check,
                    top=("--quiet",) if quiet else ())  # fmt: skip


def cli_many(runs: SimpleNamespace, *calls: tuple[int, str, ...],
             quiet: bool = False) -> list[subprocess.CompletedProcess[str]]:  # fmt: skip
    """Several read-only calls at once, each (expected exit code, command, *args)."""
    top = ["--quiet"] if quiet else []
    procs = [
        (code, subprocess.Popen([sys.executable, str(FLOW), "--db", str(runs.db), *top, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for code, *args in calls
    ]  # fmt: skip
    done = []
    for (code, proc), call in zip(procs, calls):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, (call, out, err)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


# -- run: exit codes and --tag --------------------------------------------------------------


def test_run_exit_codes_and_tag_validation(runs: SimpleNamespace) -> None:
    before = query(runs.db, "select count(*) from run")
    bad_option, empty, long = cli_many(
        runs, (2, "run", "--no-such-option"), (2, "run", "--tag", ""),
        (2, "run", "--tag", "t" * 501),
    )  # fmt: skip
    assert "No such option" in bad_option.stderr
    error = _one_line_error(empty, 2)
    assert "'--tag'" in error and "empty" in error
    assert "too long" in _one_line_error(long, 2)
    assert query(runs.db, "select count(*) from run") == before  # no run was created
    # The failed run of the fixture exited 1; the ledger says which task failed.
    assert query(runs.db, "select status from runs where run_id = ?", (runs.failed,)) == [
        ("failed",)
    ]


# -- tag ------------------------------------------------------------------------------------


@pytest.fixture
def every_namespace():
    previous = get_namespace()
    namespace(None)
    yield
    namespace(previous)


def test_tags_through_the_cli_are_seen_by_the_client(
    runs: SimpleNamespace, every_namespace: None
) -> None:
    run_id, pathspec = runs.tagged, f"CliFlow/{runs.tagged}"

    def client_tags() -> tuple[set[str], set[str]]:
        run = Run(pathspec, ledger=runs.db)
        return set(run.user_tags), set(run.system_tags)

    listed = cli(runs, "tag", "list", run_id, "--hide-system-tags")
    assert "System tags and tags; only tags can be modified" in listed.stdout
    assert "drop" in listed.stdout and "keep" in listed.stdout
    assert "user:tester" not in listed.stdout

    added = cli(runs, "tag", "add", "--run-id", run_id, "extra", "more")
    assert "Operation successful" in added.stderr and "extra" in added.stdout
    assert client_tags()[0] == {"keep", "drop", "extra", "more"}

    cli(runs, "tag", "remove", "--run-id", run_id, "more")
    cli(runs, "tag", "replace", "--run-id", run_id, "--remove", "drop", "--add", "final")
    user, system = client_tags()
    assert user == {"keep", "extra", "final"}
    assert "user:tester" in system and "runtime:dev" in system

    # System tags cannot be removed; nothing changes.
    error = _one_line_error(cli(runs, "tag", "remove", "--run-id", run_id, "runtime:dev",
                                check=1), 1)  # fmt: skip
    assert "system tag" in error and "runtime:dev" in error
    assert client_tags() == (user, system)

    quiet, every = cli_many(
        runs,
        (0, "tag", "list", "--run-id", run_id),
        (0, "tag", "list", "--all", "--hide-system-tags"),
        quiet=True,
    )
    assert quiet.stdout == f"{pathspec} ; {','.join(sorted(system))} ; extra,final,keep\n"
    assert f"{pathspec} ;  ; extra,final,keep" in every.stdout.splitlines()
    assert len(every.stdout.splitlines()) == len(
        query(runs.db, "select 1 from runs where flow = 'CliFlow'")
    )

    # Usage errors exit 2 with one line; an unknown run or an invalid tag exits 1.
    no_run, add_only, pathspec_id, unknown, empty = cli_many(
        runs, (2, "tag", "add", "x"), (2, "tag", "replace", "--run-id", run_id, "--add", "x"),
        (2, "tag", "add", "--run-id", "CliFlow/1", "x"), (1, "tag", "add", "--run-id", "12345", "x"),
        (1, "tag", "add", "--run-id", run_id, ""),
    )  # fmt: skip
    error = _one_line_error(no_run, 2)
    assert "--run-id" in error and "latest run of CliFlow is" in error
    _one_line_error(add_only, 2)
    _one_line_error(pathspec_id, 2)
    assert "CliFlow/12345 does not exist" in _one_line_error(unknown, 1)
    assert "empty" in _one_line_error(empty, 1)
    assert client_tags() == (user, system)


def test_tag_list_defaults_to_the_latest_run(runs: SimpleNamespace) -> None:
    latest = query(runs.db, "select run_id from runs where flow = 'CliFlow' "
                            "order by created_at desc limit 1")[0][0]  # fmt: skip
    out = cli(runs, "tag", "list", quiet=True).stdout
    assert out.startswith(f"CliFlow/{latest} ; ") and len(out.splitlines()) == 1


# -- logs -----------------------------------------------------------------------------------


def test_logs_print_stored_text_to_stdout_and_headers_to_stderr(runs: SimpleNamespace) -> None:
    both, only_err, failed = cli_many(
        runs, (0, "logs", f"{runs.ok}/start"), (0, "logs", f"{runs.ok}/start/1", "--stderr"),
        (0, "logs", f"{runs.failed}/fan/4", "--stderr"),
    )  # fmt: skip
    assert both.stdout == "hello from start\nwarning from start\n"
    assert both.stderr.splitlines() == [
        f"Dumping logs of run_id={runs.ok} step=start task_id=1",
        "stdout",
        "stderr",
    ]
    assert only_err.stdout == "warning from start\n"
    assert "ValueError: boom in fan" in failed.stdout
    # A step: every task, by task id; --quiet drops the headers.
    fan = cli(runs, "logs", f"{runs.ok}/fan", "--stdout", quiet=True)
    assert fan.stdout == "fan 0\nfan 1\nfan 2\n" and fan.stderr == ""


def test_logs_errors(runs: SimpleNamespace) -> None:
    not_a_path, no_step, no_attempt = cli_many(
        runs, (2, "logs", runs.ok), (1, "logs", f"{runs.ok}/nope"),
        (1, "logs", f"{runs.ok}/start/1", "--attempt", "3"),
    )  # fmt: skip
    assert "RUN_ID/STEP" in _one_line_error(not_a_path, 2)
    error = _one_line_error(no_step, 1)
    assert "has no step 'nope'" in error and "its steps: end, fan, join, start" in error
    assert "no attempt 3" in _one_line_error(no_attempt, 1)


# -- dump -----------------------------------------------------------------------------------


def test_dump_prints_artifacts_like_metaflow(runs: SimpleNamespace) -> None:
    start, keys, private, bad = cli_many(
        runs, (0, "dump", f"{runs.ok}/start", "--trust"),
        (0, "dump", f"{runs.ok}/fan", "--max-value-size", "0", "--include", "y,x"),
        (0, "dump", f"{runs.ok}/join/5", "--private", "--include", "total,_foreach_stack,name"),
        (2, "dump", "x/y/z/w"),
    )  # fmt: skip
    assert start.stderr.strip() == f"Dumping output of run_id={runs.ok} step=start task_id=1"
    assert start.stdout.splitlines() == [
        "alpha [size: 3 type: <class 'float'>] = 0.5",
        "big [size: 5002 type: <class 'str'>] = < artifact too large >",
        "fail [size: 5 type: <class 'bool'>] = False",
        "items [size: 7 type: <class 'list'>] = [0, 1, 2]",
        "n [size: 1 type: <class 'int'>] = 3",
        "name [size: 9 type: <class 'str'>] = CliFlow",
        f"when [size: {_size(runs, 'when')} type: <class 'datetime.date'>] = 2020-01-02",
        "x [size: 3 type: <class 'float'>] = 0.5",
    ]
    x = "x [size: 3 type: <class 'float'>] = < artifact too large >"
    assert keys.stdout.splitlines() == [
        x, "y [size: 1 type: <class 'int'>] = < artifact too large >",
        x, "y [size: 3 type: <class 'float'>] = < artifact too large >",  # fan[1]: y = alpha
        x, "y [size: 1 type: <class 'int'>] = < artifact too large >",
    ]  # fmt: skip
    assert len(keys.stderr.splitlines()) == 3  # one header per task
    assert private.stdout.splitlines() == [
        "_foreach_stack [size: 2 type: <class 'list'>] = []",
        "name [size: 9 type: <class 'str'>] = CliFlow",
        "total [size: 3 type: <class 'float'>] = 4.5",
    ]
    assert "RUN_ID/STEP" in _one_line_error(bad, 2)


def _size(runs: SimpleNamespace, name: str) -> int:
    return query(runs.db, "select size from artifacts where run_id = ? and name = ?",
                 (runs.ok, name))[0][0]  # fmt: skip
