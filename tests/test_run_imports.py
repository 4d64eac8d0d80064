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
