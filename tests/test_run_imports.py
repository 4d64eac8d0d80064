"""What `python flow.py run` loads: one parser (click) for every command line, and neither
peewee nor the rarer commands' modules (tag, logs, dump, card load on first use). Why there
is no second parser: docs/performance.md, "One parser"."""

from __future__ import annotations

import json

from .helpers import FLOWS, load_artifact, run_flow

FLOW = FLOWS / "plain" / "params_flow.py"


def test_a_run_loads_neither_peewee_nor_the_rarer_commands(db_path):
    for executor in ("process", "thread"):
        run_id = run_flow(FLOW, "--count", "3", "--config", '{"k": "v"}', "--executor",
                          executor, db=db_path).stdout.strip()  # fmt: skip
        assert load_artifact(db_path, run_id, "start", "loaded") == [], executor
        seen = json.loads(load_artifact(db_path, run_id, "start", "seen"))
        assert seen == [3, 0.5, "x", {"k": "v"}, False, "d"]


def test_the_lazy_commands_are_there_when_asked_for(db_path):
    run_flow(FLOW, db=db_path)
    proc = run_flow(FLOW, db=db_path, command="--help", top=())
    for name in ("tag", "logs", "dump", "card", "run", "resume"):
        assert f"\n  {name} " in proc.stdout, name
    assert "baseline" in run_flow(FLOW, "add", "--help", db=db_path, command="tag").stdout


def test_a_bad_value_gets_clicks_message_and_exit_code(db_path):
    proc = run_flow(FLOW, "--count", "abc", db=db_path, check=2)
    assert "Invalid value for '--count'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reading_a_ledger_never_imports_peewee(db_path):
    """peewee is a schema tool only (README): the Client API, search, sql and the ledgerflow
    command read without it."""
    import subprocess
    import sys

    run_id = run_flow(FLOW, db=db_path).stdout.strip()
    code = (
        "import sys, ledgerflow\n"
        "from ledgerflow import Run, namespace, search, sql\n"
        "from ledgerflow.cli.main import cli\n"
        "namespace(None)\n"
        f"run = Run('ParamsFlow/{run_id}', ledger=sys.argv[1])\n"
        "assert run['start'].task.data.count == 5\n"
        "search('x', ledger=sys.argv[1]); sql('select 1', ledger=sys.argv[1])\n"
        "try:\n"
        "    cli(['--db', sys.argv[1], 'runs'], standalone_mode=False)\n"
        "finally:\n"
        "    print('peewee' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "False"
