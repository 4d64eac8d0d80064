"""The `ledgerflow` command (runs, show, diff; search and sql have their own tests), through
click's CliRunner, over a ledger the module fixture fills once with real runs."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from ledgerflow.cli.flow_cli import build_cli
from ledgerflow.cli.main import cli
from ledgerflow.ledger import Ledger
from tests.helpers import FLOWS, ROOT, query

CLI_FLOW = FLOWS / "cli" / "cli_flow.py"
LINEAR_FLOW = FLOWS / "engine" / "linear.py"

RUN_KEYS = {"pathspec", "flow", "run_id", "status", "created_at", "finished_at", "duration_s",
            "tasks", "user", "tags", "system_tags", "params"}  # fmt: skip
TASK_KEYS = {"pathspec", "task_id", "status", "attempt", "foreach_index", "started_at",
             "finished_at", "duration_s", "exception_type", "exception", "origin_pathspec"}  # fmt: skip
ARTIFACT_KEYS = {"name", "type", "size", "encoding", "sha", "preview", "inherited"}
STEP_DIFF_KEYS = {"step", "tasks_a", "tasks_b", "changed", "added", "removed", "tasks"}
TASK_DIFF_KEYS = {"index", "a", "b", "changed", "added", "removed"}
TASK_DIFF_MATCHED_KEYS = TASK_DIFF_KEYS | {"values"}  # old -> new of the changed artifacts


def _start(db: Path, flow: Path, name: str, *args: str) -> tuple[subprocess.Popen[str], Path]:
    id_file = db.parent / f"{name}.runid"
    cmd = [sys.executable, str(flow), "--db", str(db), "--quiet", "run",
           "--run-id-file", str(id_file), *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "METAFLOW_USER": "tester"})  # fmt: skip
    return proc, id_file


def _finish(started: tuple[subprocess.Popen[str], Path], code: int = 0) -> str:
    proc, id_file = started
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (out, err)
    return id_file.read_text()


@pytest.fixture(scope="module")
def lf(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """CliFlow: a (defaults, tagged nightly), b (--n 4 --alpha 0.7: a longer foreach, other
    values), failed (fan[2] raises); and one LinearFlow run. Started one after the other so
    their order is known, b last of the CliFlow runs."""
    db = tmp_path_factory.mktemp("cli_ledger") / "ledgerflow.db"
    a = _finish(_start(db, CLI_FLOW, "a", "--tag", "nightly", "--tag", "cpu"))
    failed = _finish(_start(db, CLI_FLOW, "failed", "--fail", "true"), code=1)
    b, linear = (
        _start(db, CLI_FLOW, "b", "--n", "4", "--alpha", "0.7"),
        _start(db, LINEAR_FLOW, "linear"),
    )
    return SimpleNamespace(db=db, a=a, failed=failed, b=_finish(b), linear=_finish(linear))


def invoke(lf: SimpleNamespace, *args: str, code: int = 0, db: Path | None = None) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db or lf.db), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def invoke_json(lf: SimpleNamespace, *args: str, db: Path | None = None) -> Any:
    return json.loads(invoke(lf, *args, "--json", db=db).stdout)


def one_line_error(result: Result) -> str:
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# -- runs ---------------------------------------------------------------------------------


def test_runs_table_newest_first(lf: SimpleNamespace) -> None:
    lines = invoke(lf, "runs").stdout.splitlines()
    assert lines[0].split() == ["RUN", "ID", "FLOW", "STATUS", "STARTED", "DURATION", "TASKS",
                                "TAGS"]  # fmt: skip
    rows = [line.split() for line in lines[1:]]
    assert {r[0] for r in rows} == {lf.a, lf.failed, lf.b, lf.linear}
    created = dict(query(lf.db, "select run_id, created_at from runs"))
    assert [r[0] for r in rows] == sorted(created, key=created.__getitem__, reverse=True)
    by_id = {r[0]: r for r in rows}
    assert by_id[lf.a][1:3] == ["CliFlow", "succeeded"]
    assert by_id[lf.a][-3:] == ["6", "cpu,", "nightly"]  # tasks, then the user tags
    assert by_id[lf.failed][2] == "failed"
    # An unknown flow is an error naming the closest flows, not "No runs." (issue 15).
    err = invoke(lf, "runs", "CliFlo", code=1).stderr
    assert "no flow named 'CliFlo'; did you mean 'CliFlow'?" in err
    assert invoke(lf, "runs", "CliFlow", "--status", "running").stdout == "No runs.\n"


def test_runs_json_and_filters(lf: SimpleNamespace) -> None:
    records = invoke_json(lf, "runs", "CliFlow")
    assert [r["run_id"] for r in records] == [lf.b, lf.failed, lf.a]
    for record in records:
        assert set(record) == RUN_KEYS
    a = records[2]
    assert a["pathspec"] == f"CliFlow/{lf.a}" and a["flow"] == "CliFlow"
    assert a["status"] == "succeeded" and a["tasks"] == 6 and a["user"] == "tester"
    assert a["tags"] == ["cpu", "nightly"]
    assert "user:tester" in a["system_tags"] and "runtime:dev" in a["system_tags"]
    assert a["duration_s"] >= 0 and a["finished_at"] > a["created_at"]
    assert [r["tasks"] for r in records] == [7, 4, 6]  # b has 4 fan tasks; failed stopped

    assert [r["run_id"] for r in invoke_json(lf, "runs", "--status", "failed")] == [lf.failed]
    assert [r["run_id"] for r in invoke_json(lf, "runs", "--tag", "nightly")] == [lf.a]
    assert invoke_json(lf, "runs", "--tag", "nightly", "--tag", "nope") == []
    newest = query(lf.db, "select run_id from runs order by created_at desc limit 1")[0][0]
    assert [r["run_id"] for r in invoke_json(lf, "runs", "--limit", "1")] == [newest]
    assert invoke(lf, "runs", "--status", "bogus", code=2).exit_code == 2


def test_running_run_whose_process_is_gone_shows_as_crashed(
    lf: SimpleNamespace, tmp_path: Path
) -> None:
    # A crash, made by hand on a copy: the run is left 'running' by a pid that is gone.
    # (Opening a writable ledger records such runs as crashed; the command shows them so
    # either way, read-only ledgers included.)
    copy = tmp_path / "crashed.db"
    src, dst = sqlite3.connect(lf.db), sqlite3.connect(copy)
    src.backup(dst)
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    dst.execute("update run set status = 'running', finished_at = null, host = ?, pid = ? "
                "where run_id = ?", (socket.gethostname(), gone.pid, lf.a))  # fmt: skip
    dst.commit()
    src.close()
    dst.close()
    assert [r["status"] for r in invoke_json(lf, "runs", "CliFlow", db=copy)] == [
        "succeeded",
        "failed",
        "crashed",
    ]
    crashed = invoke_json(lf, "runs", "--status", "crashed", db=copy)
    assert [r["run_id"] for r in crashed] == [lf.a]
    assert invoke_json(lf, "runs", "--status", "running", db=copy) == []
    assert invoke_json(lf, "show", f"CliFlow/{lf.a}", db=copy)["status"] == "crashed"


@pytest.mark.parametrize("args", [
    ["runs"], ["runs", "CliFlow", "--status", "crashed"], ["runs", "--tag", "nightly"],
    ["show", "CliFlow/{a}"], ["show", "CliFlow/{a}/fan"], ["show", "CliFlow/{a}/start/1"],
    ["diff", "{a}", "{b}"],
])  # fmt: skip
def test_reads_are_indexed(lf: SimpleNamespace, args: list[str]) -> None:
    """Every statement starts from an index; only the small `flow` table is scanned."""
    statements: list[str] = []
    conn = Ledger.open(lf.db, reader=True).conn  # the one the commands read through
    conn.set_trace_callback(statements.append)
    try:
        invoke(lf, *[a.format(a=lf.a, b=lf.b) for a in args])
    finally:
        conn.set_trace_callback(None)
    plain = sqlite3.connect(lf.db)
    scans = []
    for sql in statements:
        if not sql.lstrip().lower().startswith(("select", "with")):
            continue
        for row in plain.execute(f"explain query plan {sql}"):
            if re.match(r"SCAN (?!flow\b|\(|CONSTANT)", row[3]):
                scans.append((row[3], sql))
    plain.close()
    assert statements and not scans


# -- show ---------------------------------------------------------------------------------


def test_show_flow_and_run(lf: SimpleNamespace) -> None:
    flow = invoke_json(lf, "show", "CliFlow")
    assert set(flow) == {"kind", "pathspec", "flow", "runs"} and flow["kind"] == "flow"
    assert [r["run_id"] for r in flow["runs"]] == [lf.b, lf.failed, lf.a]
    assert all(set(r) == RUN_KEYS for r in flow["runs"])
    text = invoke(lf, "show", "CliFlow").stdout
    assert text.startswith("Flow CliFlow: the newest 3 runs\nRUN ID")

    run = invoke_json(lf, "show", f"CliFlow/{lf.failed}")
    assert set(run) == RUN_KEYS | {"kind", "steps"} and run["kind"] == "run"
    assert run["steps"] == [
        {"step": "start", "pathspec": f"CliFlow/{lf.failed}/start", "tasks": 1,
         "statuses": {"succeeded": 1}},
        {"step": "fan", "pathspec": f"CliFlow/{lf.failed}/fan", "tasks": 3,
         "statuses": {"failed": 1, "succeeded": 2}},
    ]  # fmt: skip
    lines = invoke(lf, "show", f"CliFlow/{lf.a}").stdout.splitlines()
    assert lines[0].startswith(f"Run CliFlow/{lf.a}: succeeded, started ")
    assert lines[1:3] == ["Parameters: alpha=0.5 fail=false n=3", "Tags: cpu, nightly"]
    table = [line.split(None, 2) for line in lines[lines.index("STEP   TASKS  STATUS") :]]
    assert table[1:] == [["start", "1", "succeeded"], ["fan", "3", "3 succeeded"],
                         ["join", "1", "succeeded"], ["end", "1", "succeeded"]]  # fmt: skip


def test_show_step_and_task(lf: SimpleNamespace) -> None:
    step = invoke_json(lf, "show", f"CliFlow/{lf.failed}/fan")
    assert set(step) == {"kind", "pathspec", "flow", "run_id", "step", "tasks", "task_count"}
    assert [(t["task_id"], t["status"], t["foreach_index"]) for t in step["tasks"]] == [
        ("2", "succeeded", 0),
        ("3", "succeeded", 1),
        ("4", "failed", 2),
    ]
    assert all(set(t) == TASK_KEYS for t in step["tasks"])
    failed = step["tasks"][2]
    assert (failed["exception_type"], failed["exception"]) == ("builtins.ValueError",
                                                               "boom in fan")  # fmt: skip
    text = invoke(lf, "show", f"CliFlow/{lf.failed}/fan").stdout
    assert "EXCEPTION" in text and "builtins.ValueError: boom in fan" in text

    task = invoke_json(lf, "show", f"CliFlow/{lf.a}/start/1")
    assert set(task) == TASK_KEYS | {"kind", "flow", "run_id", "step", "artifacts",
                                     "stdout_tail", "stderr_tail"}  # fmt: skip
    arts = {a["name"]: a for a in task["artifacts"]}
    assert list(arts) == ["alpha", "big", "fail", "items", "n", "name", "when", "x"]  # no _x
    assert all(set(a) == ARTIFACT_KEYS for a in arts.values())
    assert arts["when"]["encoding"] == "pickle" and arts["when"]["type"] == "datetime.date"
    assert arts["items"] == {
        **arts["items"],
        "type": "builtins.list",
        "size": 7,
        "encoding": "json",
        "preview": "[0, 1, 2]",
        "inherited": False,
    }
    lines = invoke(lf, "show", f"CliFlow/{lf.a}/start/1").stdout.splitlines()
    assert lines[1].split() == ["NAME", "TYPE", "SIZE", "PREVIEW"]
    assert lines[5].split() == ["items", "builtins.list", "7", "[0,", "1,", "2]"]
    assert lines[3].endswith("zzz...") and len(lines[3]) < 100  # previews are clipped


def test_show_artifact_and_load(lf: SimpleNamespace) -> None:
    pathspec = f"CliFlow/{lf.a}/fan/3/x"
    art = invoke_json(lf, "show", pathspec)
    assert set(art) == ARTIFACT_KEYS | {"kind", "pathspec", "flow", "run_id", "step", "task_id",
                                        "attempt", "created_at"}  # fmt: skip
    assert (art["kind"], art["preview"], art["inherited"], art["attempt"]) == (
        "artifact",
        "0.5",
        True,
        0,
    )
    loaded = invoke_json(lf, "show", pathspec, "--load")
    assert set(loaded) == set(art) | {"value"} and loaded["value"] == 0.5
    text = invoke(lf, "show", pathspec, "--load").stdout
    assert "\npreview:   0.5\n" in text and text.endswith("\nvalue:     0.5\n")
    when = invoke_json(lf, "show", f"CliFlow/{lf.a}/start/1/when", "--load")
    assert when["value"] == "datetime.date(2020, 1, 2)"  # a pickle: its repr()


def test_show_and_diff_never_unpickle(lf: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    invoke(lf, "show", f"CliFlow/{lf.a}/start/1")
    invoke(lf, "show", f"CliFlow/{lf.a}/start/1/when")
    invoke(lf, "show", f"CliFlow/{lf.a}")
    invoke(lf, "diff", lf.a, lf.b)
    invoke(lf, "runs")


def test_show_errors_are_one_line(lf: SimpleNamespace) -> None:
    for bad in ("a//b", "/x", "F/1/s/2/n/extra"):
        assert "is not a pathspec" in one_line_error(invoke(lf, "show", bad, code=2))
    error = one_line_error(invoke(lf, "show", "NoFlow", code=1))
    assert "there is no flow named 'NoFlow'" in error and "CliFlow" in error
    error = one_line_error(invoke(lf, "show", f"CliFlow/{lf.a}/fan/99", code=1))
    assert "has no task '99'" in error
    error = one_line_error(invoke(lf, "show", f"CliFlow/{lf.a}/fan/2/nope", code=1))
    assert "has no artifact 'nope'" in error
    assert "--load" in one_line_error(invoke(lf, "show", "CliFlow", "--load", code=2))
    missing = invoke(lf, "runs", code=1, db=lf.db.parent / "missing.db")
    assert "no ledger at" in one_line_error(missing)


# -- diff ---------------------------------------------------------------------------------


def test_diff(lf: SimpleNamespace) -> None:
    result = invoke_json(lf, "diff", f"CliFlow/{lf.a}", lf.b)
    assert set(result) == {"a", "b", "identical", "steps"}
    assert (result["a"], result["b"], result["identical"]) == (
        f"CliFlow/{lf.a}",
        f"CliFlow/{lf.b}",
        False,
    )
    steps = {s["step"]: s for s in result["steps"]}
    assert list(steps) == ["start", "fan", "join", "end"]
    assert all(set(s) == STEP_DIFF_KEYS for s in steps.values())
    assert all(set(t) == (TASK_DIFF_MATCHED_KEYS if t["a"] and t["b"] else TASK_DIFF_KEYS)
               for s in steps.values() for t in s["tasks"])  # fmt: skip
    start = steps["start"]
    assert (start["changed"], start["added"], start["removed"]) == (
        ["alpha", "items", "n", "x"],
        [],
        [],
    )
    fan = steps["fan"]
    assert (fan["tasks_a"], fan["tasks_b"], fan["changed"]) == (3, 4, ["y"])
    assert [
        (t["index"], t["changed"], t["b"] is not None, t["a"] is not None) for t in fan["tasks"]
    ] == [([1], ["y"], True, True), ([3], [], True, False)]
    # x is passed on unchanged by fan, merged unchanged by join: reported once, at start.
    assert steps["join"]["changed"] == ["total"] and steps["end"]["tasks"] == []

    lines = invoke(lf, "diff", lf.a, lf.b).stdout.splitlines()
    # Changed plain values show old -> new (their stored JSON text; nothing is unpickled).
    assert lines[:7] == [
        f"A: CliFlow/{lf.a}",
        f"B: CliFlow/{lf.b}",
        "start: changed alpha, items, n, x",
        "  alpha: 0.5 -> 0.7",
        "  items: [0,1,2] -> [0,1,2,3]",
        "  n: 3 -> 4",
        "  x: 0.5 -> 0.7",
    ]
    assert lines[7] == "fan: 3 tasks in A, 4 in B (matched by foreach index)"
    assert lines[8].startswith("  fan[1] (task 3 vs 3): changed y")
    assert lines[9] == "    y: 0.5 -> 0.7"
    assert lines[10] == f"  fan[3]: only in B (CliFlow/{lf.b}/fan/5)"
    assert lines[11:] == ["join: changed total", "  total: 4.5 -> 10.7", "end: no differences"]

    same = invoke_json(lf, "diff", lf.a, lf.a)
    assert same["identical"] and all(not s["tasks"] for s in same["steps"])
    assert invoke(lf, "diff", lf.a, lf.a).stdout.endswith("\nNo differences.\n")
    partial = {s["step"]: s for s in invoke_json(lf, "diff", lf.a, lf.failed)["steps"]}
    assert (partial["join"]["tasks_a"], partial["join"]["tasks_b"]) == (1, 0)
    assert partial["fan"]["tasks"][0]["removed"] == ["y"]  # fan[2] failed before setting y


def test_diff_errors(lf: SimpleNamespace, tmp_path: Path) -> None:
    error = one_line_error(invoke(lf, "diff", "12345", lf.b, code=1))
    assert "no flow in ledger" in error and "'12345'" in error
    error = one_line_error(invoke(lf, "diff", f"CliFlow/{lf.a}", "CliFlow/12345", code=1))
    assert "flow CliFlow has no run '12345'" in error
    assert "is not a run" in one_line_error(invoke(lf, "diff", "a/b/c", lf.b, code=2))
    # The same run id in two flows: a bare id is ambiguous.
    copy = tmp_path / "two.db"
    src, dst = sqlite3.connect(lf.db), sqlite3.connect(copy)
    src.backup(dst)
    dst.execute("update run set run_id = ? where run_id = ?", (lf.a, lf.linear))
    dst.commit()
    src.close()
    dst.close()
    error = one_line_error(invoke(lf, "diff", lf.a, lf.b, code=2, db=copy))
    assert "CliFlow, LinearFlow" in error and f"Flow/{lf.a}" in error


# -- help and documentation ---------------------------------------------------------------


def _leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {prefix.strip(): group} if prefix else {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_leaf_commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


def _readme_commands(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)`", body, flags=re.MULTILINE)


def test_every_command_has_an_example_and_a_readme_row() -> None:
    spec = importlib.util.spec_from_file_location("cli_flow_for_help", CLI_FLOW)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for group, section in ((build_cli(module.CliFlow), "Flow command line"),
                           (cli, "The `ledgerflow` command")):  # fmt: skip
        assert "Example" in (group.help or "")
        documented = _readme_commands(section)
        for name, command in _leaf_commands(group).items():
            assert "Example" in (command.help or ""), f"{name}: help has no example"
            if isinstance(command, click.Group):
                continue
            assert any(row == name or row.startswith(name + " ") for row in documented), (
                f"{name!r} is missing from README's {section!r} table"
            )
