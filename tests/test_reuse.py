"""`run --reuse`: a task whose step code and inputs the ledger has seen is cloned, not run
(ledgerflow/taskreuse.py, codekey.py). Each test runs the real CLI on a copy of
tests/flows/reuse/chain_flow.py, edits it as a user would, and reads back which tasks ran."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerflow import Run
from tests.helpers import FLOWS, query, run_flow

SOURCE = FLOWS / "reuse" / "chain_flow.py"
ALL = {"start", "second", "third", "fourth", "join", "stamp", "end"}


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "chain_flow.py"
    shutil.copy(SOURCE, path)
    return path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def run(flow: Path, db: Path, *args: str) -> str:
    return run_flow(flow, *args, db=db).stdout.strip()


def ran(db: Path, run_id: str) -> set[str]:
    """The steps of which at least one task ran (was not cloned)."""
    rows = query(db, "select t.step from task t join run r on r.id = t.run_id"
                     " where r.run_id = ? and t.origin_pathspec is null", (run_id,))  # fmt: skip
    return {step for (step,) in rows}


def test_an_unchanged_rerun_reuses_every_task_and_reads_back_the_same(flow, db_path):
    first = run(flow, db_path)
    second = run(flow, db_path, "--reuse")
    assert ran(db_path, second) == {"stamp", "end"}  # stamp opts out; end sees its new value
    a, b = Run(f"ChainFlow/{first}", ledger=db_path), Run(f"ChainFlow/{second}", ledger=db_path)
    assert b.successful and b.data.total == a.data.total == 2 * (12 + 13 + 14)
    for step in ("start", "second", "third", "fourth", "join"):
        shas_a = sorted((t.index, t["a"].sha) for t in a[step])
        shas_b = sorted((t.index, t["a"].sha) for t in b[step])
        assert shas_a == shas_b
    task = next(iter(b["fourth"]))
    origin = task.origin_pathspec
    assert origin and origin.startswith(f"ChainFlow/{first}/fourth/")
    assert task.metadata_dict["origin-run-id"] == first
    assert task.metadata_dict["origin-task-id"] == origin.rsplit("/", 1)[1]
    # the clone carries its origin's output
    assert "second ran" in next(iter(b["second"])).stdout


def test_without_reuse_everything_runs_but_keys_are_recorded(flow, db_path):
    first = run(flow, db_path)
    again = run(flow, db_path)
    assert ran(db_path, again) == ALL
    keys = query(db_path, "select count(*) from task_key k join task t on t.id = k.task_pk"
                          " join run r on r.id = t.run_id where r.run_id = ?", (first,))  # fmt: skip
    assert keys[0][0] == 11 - 1  # every task but the opted-out stamp


def test_editing_the_last_step_reruns_only_it(flow, db_path):
    run(flow, db_path)
    edit(flow, 'print("total", self.total)', 'print("the total is", self.total)')
    second = run(flow, db_path, "--reuse")
    assert ran(db_path, second) == {"stamp", "end"}


def test_editing_a_helper_reruns_the_step_that_calls_it_and_what_follows(flow, db_path):
    run(flow, db_path)
    edit(flow, "return x * 2", "return x * 3")
    second = run(flow, db_path, "--reuse")
    assert ran(db_path, second) == {"fourth", "join", "stamp", "end"}
    assert Run(f"ChainFlow/{second}", ledger=db_path).data.total == 3 * (12 + 13 + 14)


def test_an_edit_that_does_not_change_a_steps_outputs_leaves_what_follows_reused(flow, db_path):
    run(flow, db_path)
    edit(flow, "self.w = helper(self.v)", "self.w = helper(self.v)  # doubled\n        pass")
    second = run(flow, db_path, "--reuse")
    assert ran(db_path, second) == {"fourth", "stamp", "end"}  # join sees the same SHAs


def test_a_module_constant_a_step_reads_invalidates_it(flow, db_path):
    run(flow, db_path)
    edit(flow, "OFFSET = 10", "OFFSET = 20")
    second = run(flow, db_path, "--reuse")
    assert ran(db_path, second) == ALL


def test_a_changed_parameter_invalidates_every_task(flow, db_path):
    run(flow, db_path)
    second = run(flow, db_path, "--reuse", "--alpha", "2")
    assert ran(db_path, second) == ALL
    third = run(flow, db_path, "--reuse", "--alpha", "2")
    assert ran(db_path, third) == {"stamp", "end"}


def test_an_upstream_value_change_invalidates_what_reads_it(flow, db_path):
    run(flow, db_path)
    edit(flow, "self.items = [1, 2, 3]", "self.items = [1, 2, 4]")
    second = run(flow, db_path, "--reuse")
    # second's code changed; the first two foreach branches get the same input value but the
    # list they come from changed, so they run too (their inputs' SHAs differ)
    assert ran(db_path, second) == ALL - {"start"}


def test_failed_and_caught_tasks_are_never_reused(flow, db_path):
    edit(flow, "self.w = helper(self.v)", "self.w = helper(self.v)\n        assert self.v < 13")
    first = run_flow(flow, db=db_path, check=1)
    assert first.returncode == 1
    second = run_flow(flow, "--reuse", db=db_path, check=1)
    rows = query(db_path, "select t.origin_pathspec from task t join run r on r.id = t.run_id"
                          " where t.step = 'fourth' and t.status = 'failed'")  # fmt: skip
    assert rows and all(origin is None for (origin,) in rows)  # the failed task ran again
    assert "Reused" in second.stdout or second.stdout == ""  # earlier steps may be reused


def test_a_step_that_opts_out_always_runs(flow, db_path):
    run(flow, db_path)
    for _ in range(2):
        again = run(flow, db_path, "--reuse")
        assert "stamp" in ran(db_path, again)


def test_reuse_false_needs_a_bool(flow, db_path):
    edit(flow, "@reuse(False)", '@reuse("no")')
    proc = run_flow(flow, db=db_path, check=1)
    # (raised while the flow's class is defined, as every decorator's argument errors are)
    assert "@reuse takes True or False" in proc.stderr


def test_explain_says_what_changed(flow, db_path):
    run(flow, db_path)
    edit(flow, "return x * 2", "return x * 3")
    second = run(flow, db_path, "--reuse")
    out = subprocess.run(
        [sys.executable, "-m", "ledgerflow", "--db", str(db_path), "explain",
         f"ChainFlow/{second}/fourth"], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "ran (succeeded)" in out
    assert "code: function __main__.helper changed" in out
    assert "input:" not in out  # only the code changed for fourth
    out = subprocess.run(
        [sys.executable, "-m", "ledgerflow", "--db", str(db_path), "explain", "--json",
         f"ChainFlow/{second}/second"], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    doc = json.loads(out)
    assert doc["reused_from"].startswith("ChainFlow/")
    assert doc["compared_with"]["same_key"] is True
    assert ["step", "ChainFlow.second"] == doc["code_parts"][0][:2]


def test_explain_of_an_unknown_task_is_one_line(flow, db_path):
    first = run(flow, db_path)
    proc = subprocess.run(
        [sys.executable, "-m", "ledgerflow", "--db", str(db_path), "explain",
         f"ChainFlow/{first}/fourth/999"], capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "999" in proc.stderr


def test_runs_imported_from_an_untrusted_ledger_are_not_reused(flow, tmp_path, db_path,
                                                               monkeypatch):  # fmt: skip
    other = tmp_path / "theirs.db"
    # Someone else (their own trust store) makes the ledger: it is theirs, not ours.
    monkeypatch.setenv("LEDGERFLOW_TRUST_STORE", str(tmp_path / "someone-else.json"))
    run(flow, other)
    monkeypatch.delenv("LEDGERFLOW_TRUST_STORE")
    subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(db_path), "import",
                    str(other)], check=True, capture_output=True)  # fmt: skip
    assert query(db_path, "select count(*) from task_key")[0][0] == 10  # the keys came along
    mine = run(flow, db_path, "--reuse")
    assert ran(db_path, mine) == ALL  # not from a source the user trusts


def test_keys_survive_export_and_import_into_a_trusting_ledger(flow, tmp_path, db_path,
                                                               monkeypatch):  # fmt: skip
    other = tmp_path / "theirs.db"
    monkeypatch.setenv("LEDGERFLOW_TRUST_STORE", str(tmp_path / "someone-else.json"))
    first = run(flow, other)
    exported = tmp_path / "one-run.db"  # they export a run and send the file
    subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(other), "export",
                    f"ChainFlow/{first}", "--to", str(exported)], check=True,
                   capture_output=True)  # fmt: skip
    monkeypatch.delenv("LEDGERFLOW_TRUST_STORE")
    subprocess.run([sys.executable, "-m", "ledgerflow", "trust", str(exported)], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(db_path), "import",
                    str(exported)], check=True, capture_output=True)  # fmt: skip
    mine = run(flow, db_path, "--reuse")
    assert ran(db_path, mine) == {"stamp", "end"}


def test_runner_run_takes_reuse(flow, db_path, monkeypatch):
    from ledgerflow import Runner

    monkeypatch.setenv("LEDGERFLOW_DB", str(db_path))
    first = Runner(str(flow), show_output=False).run()
    second = Runner(str(flow), show_output=False).run(reuse=True)
    assert second.run.successful
    assert ran(db_path, second.run.id) == {"stamp", "end"}
    assert second.run.data.total == first.run.data.total


def test_show_and_logs_say_a_task_was_cloned_and_from_where(flow, db_path):
    first = run(flow, db_path)
    second = run(flow, db_path, "--reuse")

    def ledgerflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ledgerflow", "--db", str(db_path), *args],
                              capture_output=True, text=True, check=True)  # fmt: skip

    out = ledgerflow("show", f"ChainFlow/{second}/third").stdout
    assert "cloned from" in out.lower() and f"ChainFlow/{first}/third/" in out
    task = json.loads(ledgerflow("show", "--json", f"ChainFlow/{second}/start/1").stdout)
    assert task["origin_pathspec"] == f"ChainFlow/{first}/start/1"
    assert (
        f"Cloned from ChainFlow/{first}/start/1"
        in ledgerflow("show", f"ChainFlow/{second}/start/1").stdout
    )
    assert (
        f"cloned from ChainFlow/{first}/second/"
        in ledgerflow("logs", f"ChainFlow/{second}/second").stderr
    )
    assert "cloned" not in ledgerflow("logs", f"ChainFlow/{second}/stamp").stderr


def test_the_ui_task_page_says_a_task_was_reused_and_links_its_origin(flow, db_path):
    import threading
    import urllib.request

    from ledgerflow.ui import make_server

    first = run(flow, db_path)
    second = run(flow, db_path, "--reuse")
    server, base = make_server(db_path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(f"{base.rstrip('/')}/task/ChainFlow/{second}/start/1") as page:
            html = page.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "cloned by run --reuse" in html
    assert f'href="/task/ChainFlow/{first}/start/1"' in html
