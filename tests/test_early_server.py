"""The fork server forked early, before the command line loads (executors/early.py): tasks
run without the command line's modules, and see what the command line set up (configs,
`--with` decorators, @project's branch, the environment) exactly as tasks of a server
forked late do; a run that does not use it leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .helpers import load_artifact, run_flow

FLOW = textwrap.dedent(
    """
    import os, sys
    from ledgerflow import (Config, FlowSpec, Parameter, config_expr, current, environment,
                            project, step)

    @project(name="early")
    class EarlyFlow(FlowSpec):
        cfg = Config("cfg", default_value={"mode": "slow", "n": 2})
        alpha = Parameter("alpha", default=1)

        @environment(vars={"MODE": config_expr("cfg.mode.upper()")})
        @step
        def start(self):
            self.cli_loaded = "click" in sys.modules or "ledgerflow.runtime" in sys.modules
            self.mode = os.environ.get("MODE")
            self.n = self.cfg.n
            self.branch = current.branch_name
            self.seen_env = os.environ.get("EARLY_TEST_VAR")
            self.decorators = sorted(d.name for d in self.start.decorators) \\
                if hasattr(self.start, "decorators") else None
            self.next(self.fail)

        @step
        def fail(self):
            raise ValueError("caught by --with catch")
            self.next(self.end)

        @step
        def end(self):
            self.caught = repr(self.oops) if hasattr(self, "oops") else None

    if __name__ == "__main__":
        EarlyFlow()
    """
)


@pytest.fixture()
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "early_flow.py"
    path.write_text(FLOW)
    return path


def _run(flow_file: Path, db: Path, *args: str, top: tuple[str, ...] = (),
         env: dict[str, str] | None = None) -> str:  # fmt: skip
    cmd = [sys.executable, str(flow_file), "--db", str(db), "--quiet", *top, "run", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def _artifact(db: Path, run_id: str, step: str, name: str):
    return load_artifact(db, run_id, step, name)


def test_tasks_run_without_the_command_line_and_see_its_setup(flow_file, db_path):
    run_id = _run(flow_file, db_path, "--with", "catch:var=oops", top=("--branch", "feature"),
                  env={"EARLY_TEST_VAR": "here"})  # fmt: skip
    # The server was forked before click and the runtime loaded ...
    assert _artifact(db_path, run_id, "start", "cli_loaded") is False
    # ... and its tasks see what the command line set up: the configs' values in
    # decorators and in steps, the --with decorator, @project's --branch, the environment.
    assert _artifact(db_path, run_id, "start", "mode") == "SLOW"
    assert _artifact(db_path, run_id, "start", "n") == 2
    assert _artifact(db_path, run_id, "start", "branch") == "test.feature"
    assert _artifact(db_path, run_id, "start", "seen_env") == "here"
    assert _artifact(db_path, run_id, "start", "decorators") == ["catch", "environment"]
    assert "caught by --with catch" in _artifact(db_path, run_id, "end", "caught")


def test_config_values_from_the_command_line_reach_the_early_server(flow_file, db_path):
    run_id = _run(flow_file, db_path, "--with", "catch:var=oops")
    assert _artifact(db_path, run_id, "start", "mode") == "SLOW"
    top = [sys.executable, str(flow_file), "--db", str(db_path), "--quiet",
           "--config-value", "cfg", json.dumps({"mode": "fast", "n": 5}),
           "run", "--with", "catch:var=oops"]  # fmt: skip
    proc = subprocess.run(top, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    assert _artifact(db_path, run_id, "start", "cli_loaded") is False
    assert _artifact(db_path, run_id, "start", "mode") == "FAST"
    assert _artifact(db_path, run_id, "start", "n") == 5


def test_the_late_server_gives_the_same_tasks(flow_file, db_path):
    """LEDGERFLOW_EARLY_SERVER=0: the server forked from the run's process, as before."""
    run_id = _run(flow_file, db_path, "--with", "catch:var=oops", top=("--branch", "feature"),
                  env={"EARLY_TEST_VAR": "here", "LEDGERFLOW_EARLY_SERVER": "0"})  # fmt: skip
    assert _artifact(db_path, run_id, "start", "cli_loaded") is True
    assert _artifact(db_path, run_id, "start", "mode") == "SLOW"
    assert _artifact(db_path, run_id, "start", "branch") == "test.feature"
    assert _artifact(db_path, run_id, "start", "decorators") == ["catch", "environment"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run"], True),
        (["--quiet", "resume", "start"], True),
        (["run", "--executor", "process"], True),
        (["run", "--executor=process"], True),
        (["run", "--executor", "thread"], False),
        (["run", "--executor=spawn"], False),
        (["show"], False),
        (["dump", "1/start"], False),
    ],
)
def test_only_a_command_that_may_fork_tasks_forks_early(args, expected, monkeypatch):
    from ledgerflow.executors import early

    monkeypatch.delenv("LEDGERFLOW_EARLY_SERVER", raising=False)
    assert early._may_run_in_processes(args) is expected


SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {folder!r})
    from ledgerflow.executors import early
    from early_flow import EarlyFlow
    early.fork_early(EarlyFlow, ["run"])
    (pid, _, _), = early._EARLY
    if sys.argv[1] == "mutate":  # what a run could change that early.py does not carry
        EarlyFlow.start.decorators.pop()
    taken = early.take(EarlyFlow)
    if taken is None:
        # refused and reaped: no such process any more
        try:
            os.kill(pid, 0)
            print("alive")
        except ProcessLookupError:
            print("fell back")
    else:
        server, sock = taken
        sock.close()  # the run is over: the server stops and exits
        os.waitpid(server, 0)
        print("taken")
    """
)


@pytest.mark.parametrize(("how", "expected"), [("same", "taken"), ("mutate", "fell back")])
def test_a_flow_class_that_came_out_different_falls_back_to_a_late_server(
        flow_file, tmp_path, how, expected):  # fmt: skip
    script = tmp_path / "take.py"
    script.write_text(SCRIPT.format(folder=str(flow_file.parent)))
    proc = subprocess.run([sys.executable, str(script), how], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


@pytest.mark.parametrize(
    "args", [["run", "--no-such-option"], ["run", "--help"], ["run", "--alpha"]]
)
def test_a_run_that_never_starts_leaves_no_process_behind(flow_file, db_path, args):
    cmd = [sys.executable, str(flow_file), "--db", str(db_path), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.communicate(timeout=120)
    assert proc.returncode != 0 or args[-1] == "--help"
    # (forked from the flow's process, the early server has its command line)
    deadline = time.monotonic() + 10
    while _processes_running(str(flow_file)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_running(str(flow_file)) == []


def _processes_running(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and _state(entry) != "Z":
                found.append(int(entry.name))
    return found


def _state(entry: Path) -> str:
    try:
        return (entry / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"


def test_a_thread_run_never_forks_early(flow_file, db_path):
    run_id = _run(flow_file, db_path, "--executor", "thread", "--with", "catch:var=oops")
    assert _artifact(db_path, run_id, "start", "cli_loaded") is True


def test_run_flow_helper_still_reaches_the_early_server(flow_file, db_path):
    proc = run_flow(flow_file, "--with", "catch:var=oops", db=db_path)
    run_id = proc.stdout.strip().splitlines()[-1]
    assert _artifact(db_path, run_id, "start", "cli_loaded") is False


@pytest.mark.parametrize("executor", ["process", "spawn", "thread", "sequential"])
def test_with_decorators_reach_the_tasks_of_every_executor(flow_file, db_path, executor):
    """`--with catch` catches the failing step however tasks run (a fresh interpreter per
    task, `spawn`, loads the flow class again: it applies them from the environment)."""
    run_id = _run(flow_file, db_path, "--executor", executor, "--with", "catch:var=oops")
    assert "caught by --with catch" in _artifact(db_path, run_id, "end", "caught")
    assert _artifact(db_path, run_id, "start", "decorators") == ["catch", "environment"]


def test_a_rich_flow_gives_the_same_artifacts_from_an_early_and_a_late_server(tmp_path):
    """tests/flows/configs/config_flow.py (configs in decorators, parameter defaults and the
    flow's @project), with --config-value, --branch and --with: every artifact of every
    task is the same whichever server forked its tasks."""
    from ledgerflow import Run, namespace

    from .helpers import FLOWS

    for name in ("config_flow.py", "cfg.json"):
        text = (FLOWS / "configs" / name).read_text()
        if name.endswith(".py"):
            text = text.replace(
                "        self.limits_cpu = self.limits.cpu\n",
                "        self.limits_cpu = self.limits.cpu\n"
                "        import sys\n"
                "        self._cli_loaded = 'click' in sys.modules\n"
                "        self.cli_loaded = self._cli_loaded\n",
            )
        (tmp_path / name).write_text(text)
    flow = tmp_path / "config_flow.py"
    top = ("--config-value", "limits", json.dumps({"cpu": 3, "retries": 2, "mode": "slow"}),
           "--branch", "b")  # fmt: skip
    seen = {}
    for early in ("1", "0"):
        db = tmp_path / f"early{early}.db"
        run_id = _run(flow, db, "--with", "catch:var=err", top=top,
                      env={"LEDGERFLOW_EARLY_SERVER": early})  # fmt: skip
        namespace(None)
        run = Run(f"ConfigFlow/{run_id}", ledger=db)
        values = {}
        for step in run:
            for task in step:
                for artifact in task:
                    if not artifact.id.startswith("_") and artifact.id != "cli_loaded":
                        values[(step.id, artifact.id)] = artifact.data
        seen[early] = values
        assert run["end"].task.data.cli_loaded is (early == "0")
    assert len(seen["1"]) >= 8 and seen["1"] == seen["0"]
    assert seen["1"][("start", "mode")] == "SLOW" and seen["1"][("end", "limits_cpu")] == 3


def test_a_large_setup_travels_in_pieces(flow_file, db_path):
    """The setup (here 300 kB of environment) is sent in messages the size a SEQPACKET
    socket takes; the early server still serves, and tasks see the values."""
    big = "x" * 100_000  # (one variable may hold at most 128 kB)
    env = {"EARLY_TEST_VAR": big, "EARLY_TEST_MORE": big, "EARLY_TEST_MORE2": big}
    run_id = _run(flow_file, db_path, "--with", "catch:var=oops", env=env)
    assert _artifact(db_path, run_id, "start", "cli_loaded") is False
    assert _artifact(db_path, run_id, "start", "seen_env") == big
