"""Metaflow code that ledgerflow runs unchanged (issue 20): each test is one behaviour a
Metaflow user or Metaflow's own core test suite relies on, through the real flow command."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerflow import Flow, Run, Task, namespace

from .helpers import FLOWS, latest_run_id, query, run_flow

COMPAT = FLOWS / "compat"
PARAMS = COMPAT / "params_flow.py"
INSIDE = COMPAT / "inside_flow.py"
CLI = FLOWS / "cli" / "cli_flow.py"


def _run(db: Path, flow: str, run_id: str | None = None) -> Run:
    namespace(None)
    return Run(f"{flow}/{run_id or latest_run_id(db, flow)}", ledger=db)


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


# -- Parameters -------------------------------------------------------------------------------


def test_separator_splits_the_value_like_metaflow(db_path: Path) -> None:
    run_flow(PARAMS, "--req", "1,2", db=db_path)  # the plain parser's path
    assert _run(db_path, "ParamsFlow")["start"].task.data.seen[0] == ["1", "2"]
    run_flow(PARAMS, "--req", "x", "--with", "retry", db=db_path)  # click's path
    assert _run(db_path, "ParamsFlow")["start"].task.data.seen[0] == ["x"]
    run_flow(PARAMS, db=db_path)  # the default is split too
    assert _run(db_path, "ParamsFlow")["start"].task.data.seen[0] == ["a", "b"]


def test_separator_on_a_non_string_parameter_is_refused() -> None:
    from ledgerflow import Parameter
    from ledgerflow.exceptions import ParameterError

    with pytest.raises(ParameterError, match="separator= is only allowed for string"):
        Parameter("n", default=1, separator=",")


def test_deploy_time_default_gets_the_flow_name_and_project(db_path: Path) -> None:
    run_flow(PARAMS, db=db_path)
    assert _run(db_path, "ParamsFlow")["start"].task.data.seen[1] == "ParamsFlow:origin:compat"


def test_a_type_error_inside_a_default_function_is_reported_as_itself(db_path: Path) -> None:
    proc = run_flow(COMPAT / "bad_default.py", db=db_path, check=1)
    _no_traceback(proc)
    assert "default function 'broken' raised TypeError: object of type 'int' has no len()" \
        in proc.stderr  # fmt: skip
    assert "ctx" not in proc.stderr


@pytest.mark.parametrize("prefix", ["METAFLOW_RUN_", "LEDGERFLOW_RUN_"])
def test_parameters_and_include_files_read_run_environment_variables(
    prefix: str, tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "override.txt").write_text("from the environment")
    monkeypatch.setenv(f"{prefix}COUNT", "7")
    monkeypatch.setenv(f"{prefix}NOTES", "override.txt")
    run_flow(PARAMS, db=db_path)
    seen = _run(db_path, "ParamsFlow")["start"].task.data.seen
    assert seen[2:] == (7, "from the environment")
    # the command line still wins
    run_flow(PARAMS, "--count", "9", db=db_path)
    assert _run(db_path, "ParamsFlow")["start"].task.data.seen[2] == 9


def test_assigning_a_parameter_raises_attribute_error(db_path: Path) -> None:
    run_flow(INSIDE, db=db_path)
    assert _run(db_path, "InsideFlow")["start"].task.data.assign_error == \
        "ParameterAssignmentError"  # fmt: skip
    from ledgerflow.exceptions import ParameterAssignmentError

    assert issubclass(ParameterAssignmentError, AttributeError)


# -- What a step sees -------------------------------------------------------------------------


def test_a_step_sees_its_own_run_through_current_and_tags_it(db_path: Path) -> None:
    run_flow(INSIDE, db=db_path)
    run = _run(db_path, "InsideFlow")
    data = run["start"].task.data
    assert data.run_pathspec == run.pathspec
    assert data.run_tags == ["seen-from-inside"] and "seen-from-inside" in run.user_tags
    assert (data.step_seen, data.next_seen) == ("start", ["middle"])


def test_a_step_sees_its_own_task_through_current(db_path: Path) -> None:
    run_flow(COMPAT / "current_task.py", db=db_path)
    run = _run(db_path, "CurrentTaskFlow")
    task = run["start"].task
    assert task.data.seen[:2] == (task.pathspec, task.id)


def test_every_retry_attempt_stays_readable(db_path: Path) -> None:
    run_flow(INSIDE, db=db_path)
    task = _run(db_path, "InsideFlow")["middle"].task
    first, second = Task(task.pathspec, attempt=0), Task(task.pathspec, attempt=1)
    assert "attempt 0" in first.stdout and "first attempt fails" in first.stderr
    assert second.data.attempt_value == 1 and first["attempt_value"].data == 0


# -- @project ---------------------------------------------------------------------------------


@pytest.mark.parametrize("top, env, branch", [
    ((), {}, "user.tester"),
    (("--branch", "feature_x"), {}, "test.feature_x"),
    (("--production",), {}, "prod"),
    (("--branch", "b2", "--production"), {}, "prod.b2"),
    ((), {"METAFLOW_BRANCH": "from_env"}, "test.from_env"),
    ((), {"METAFLOW_PRODUCTION": "1"}, "prod"),
])  # fmt: skip
def test_project_branch_names_and_tags_as_metaflow_composes_them(
    top: tuple[str, ...], env: dict[str, str], branch: str, db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    proc = run_flow(FLOWS / "engine" / "project_flow.py", db=db_path, top=top)
    production = "prod" in branch
    assert f"demo {branch} demo.{branch}.ProjFlow {production}" in proc.stdout
    run = _run(db_path, "ProjFlow")
    assert {"project:demo", f"project_branch:{branch}"} <= run.system_tags


def test_an_invalid_branch_name_is_one_clear_error(db_path: Path) -> None:
    proc = run_flow(FLOWS / "engine" / "project_flow.py", db=db_path, top=("--branch", "Bad-Name"),
                    check=1)  # fmt: skip
    _no_traceback(proc)
    assert "branch name 'Bad-Name'" in proc.stderr


# -- The flow command -------------------------------------------------------------------------


@pytest.mark.parametrize("top", [
    ("--no-pylint",), ("--pylint",),
    ("--metadata=local", "--datastore=local", "--environment=local"),
    ("--metadata", "local", "--datastore", "local", "--datastore-root", "/tmp/x"),
])  # fmt: skip
def test_metaflow_top_level_options_are_accepted(top: tuple[str, ...], db_path: Path) -> None:
    proc = run_flow(CLI, db=db_path, top=top)
    run_id = latest_run_id(db_path, "CliFlow")
    dump = run_flow(CLI, f"{run_id}/start", db=db_path, top=top, command="dump")
    assert "x [size:" in dump.stdout and proc.returncode == 0


def test_help_version_output_dot_and_output_raw(db_path: Path) -> None:
    assert "run" in run_flow(CLI, db=db_path, top=(), command="help").stdout
    from ledgerflow import __version__

    assert run_flow(CLI, db=db_path, top=(), command="version").stdout.strip() == __version__
    dot = run_flow(CLI, db=db_path, top=(), command="output-dot").stdout
    assert dot.startswith("digraph CliFlow {") and "start -> fan;" in dot
    raw = run_flow(CLI, "--json", db=db_path, top=("--quiet",), command="output-raw").stdout
    import json

    graph = json.loads(raw)
    assert graph["graph"]["start"]["next"] == ["fan"] and "graph_structure" in graph
    assert "*[start foreach (" in run_flow(CLI, db=db_path, command="output-raw").stdout


def test_run_namespace_sets_the_client_namespace_inside_steps(tmp_path: Path,
                                                              db_path: Path) -> None:  # fmt: skip
    flow = tmp_path / "ns_flow.py"
    flow.write_text(
        "from ledgerflow import FlowSpec, get_namespace, step\n"
        "class NsFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        self.ns = get_namespace()\n"
        "        self.next(self.end)\n"
        "    @step\n    def end(self):\n        pass\n"
        "if __name__ == '__main__':\n    NsFlow()\n"
    )
    run_flow(flow, "--namespace", "team:x", "--max-log-size", "5", db=db_path)
    assert _run(db_path, "NsFlow")["start"].task.data.ns == "team:x"
    run_flow(flow, "--namespace=", db=db_path)
    assert _run(db_path, "NsFlow")["start"].task.data.ns is None
    run_flow(flow, db=db_path)
    assert _run(db_path, "NsFlow")["start"].task.data.ns == "user:tester"


def test_dump_file_writes_metaflows_pickled_dict(tmp_path: Path, db_path: Path) -> None:
    run_flow(CLI, db=db_path)
    run_id = latest_run_id(db_path, "CliFlow")
    out = tmp_path / "dump.pkl"
    proc = run_flow(CLI, "--max-value-size", "10", "--file", str(out), f"{run_id}/start",
                    db=db_path, top=(), command="dump")  # fmt: skip
    assert "Artifacts written to" in proc.stderr and proc.stdout == ""
    with open(out, "rb") as f:
        data = pickle.load(f)
    task_id = query(db_path, "select task_id from tasks where run_id = ? and step = 'start'",
                    (run_id,))[0][0]  # fmt: skip
    assert list(data) == [f"{run_id}/start/{task_id}"]
    values = data[f"{run_id}/start/{task_id}"]
    assert values["big"] == "z" * 5000  # every value, whatever --max-value-size says
    assert values["items"] == [0, 1, 2] and not any(k.startswith("_") for k in values)
    # a step's every task; --include and --private as without --file
    run_flow(CLI, "--file", str(out), "--include", "y", f"{run_id}/fan", db=db_path,
             command="dump")  # fmt: skip
    with open(out, "rb") as f:
        fan = pickle.load(f)
    assert len(fan) == 3 and all(set(v) == {"y"} for v in fan.values())
    run_flow(CLI, "--file", str(out), "--private", f"{run_id}/start", db=db_path, command="dump")
    with open(out, "rb") as f:
        private = next(iter(pickle.load(f).values()))
    assert private["_foreach_values"] is not None and "_success" in private


def test_tag_list_my_runs_and_groupings(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_flow(CLI, "--tag", "shared", "--tag", "mine", db=db_path)
    mine = latest_run_id(db_path, "CliFlow")
    monkeypatch.setenv("METAFLOW_USER", "someone_else")
    run_flow(CLI, "--tag", "shared", db=db_path)
    other = latest_run_id(db_path, "CliFlow")
    monkeypatch.setenv("METAFLOW_USER", "tester")
    by_tag = run_flow(CLI, "--all", "--group-by-tag", "--hide-system-tags", db=db_path,
                      command="tag", top=("--quiet",), check=None)  # fmt: skip
    proc = run_flow(CLI, "list", "--all", "--group-by-tag", "--hide-system-tags",
                    db=db_path, command="tag")  # fmt: skip
    assert by_tag.returncode == 2  # `tag --all` is no command: list is
    lines = set(proc.stdout.splitlines())
    assert f"user:shared ; CliFlow/{min(mine, other)},CliFlow/{max(mine, other)}" in lines
    assert f"user:mine ; CliFlow/{mine}" in lines
    my = run_flow(CLI, "list", "--my-runs", db=db_path, command="tag").stdout
    assert f"CliFlow/{mine} ;" in my and other not in my
    grouped = run_flow(CLI, "list", "--my-runs", "--group-by-run", db=db_path, command="tag",
                       top=()).stdout  # fmt: skip
    assert f"For run CliFlow/{mine}" in grouped
    both = run_flow(CLI, "list", "--group-by-tag", "--group-by-run", db=db_path,
                    command="tag", check=2)  # fmt: skip
    _no_traceback(both)


# -- What ledgerflow does not do, said once -----------------------------------------------------


def test_unapplied_decorators_are_warned_about_once_per_run(db_path: Path) -> None:
    proc = run_flow(INSIDE, db=db_path, top=("--quiet", "--environment=conda"))
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 5, warnings
    text = "\n".join(warnings)
    for name in ("@kubernetes on step start", "@batch on step end", "@conda on step end",
                 "@pypi on step middle", "--environment=conda"):  # fmt: skip
        assert name in text
    # @pypi/@conda name the packages missing here and how to get them (click is installed)
    assert "pip install 'surely-not-installed-pkg==1.0'" in text
    assert "'numpy==1.0'" in text and "click" not in text


@pytest.mark.parametrize("case, says", [
    # Configs are supported now (test_configs.py); what these two flows do wrong is said.
    ("config", "config 'cfg': cannot read default file config.json"),
    ("config_expr", "config expression 'cfg.cpu' could not be evaluated (NameError"),
    ("parallel", "Step 'end' uses @parallel"),
])  # fmt: skip
def test_configs_and_parallel_are_refused_in_one_line(case: str, says: str,
                                                       db_path: Path) -> None:  # fmt: skip
    cmd = [sys.executable, str(COMPAT / "unsupported.py"), case, "--db", str(db_path), "run"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    _no_traceback(proc)
    assert proc.stderr.strip().splitlines() == [next(
        line for line in proc.stderr.splitlines() if says in line)]  # fmt: skip
    assert not db_path.exists()  # nothing half-written
    ok = subprocess.run(
        [*cmd[:2], "none", *cmd[3:]], capture_output=True, text=True, timeout=60, check=False
    )
    assert ok.returncode == 0, ok.stderr


def test_external_command_failed_is_importable_as_in_metaflow() -> None:
    from ledgerflow import ExternalCommandFailed, MetaflowException

    assert issubclass(ExternalCommandFailed, MetaflowException)


# -- The Client API ---------------------------------------------------------------------------


def test_loglines_environment_info_and_trigger_have_metaflows_shapes(db_path: Path) -> None:
    run_flow(INSIDE, db=db_path)
    run = _run(db_path, "InsideFlow")
    task = run["start"].task
    lines = list(task.loglines("stdout"))
    assert [line for _, line in lines] == ["hello from start", "second line"]
    # naive UTC datetimes, as Metaflow's
    started = query(db_path, "select started_at from tasks where pathspec = ?",
                    (task.pathspec,))[0][0]  # fmt: skip
    assert all(ts.isoformat() == started.rstrip("Z") for ts, _ in lines)
    assert next(iter(task.loglines("stdout", as_unicode=False)))[1] == b"hello from start"
    assert task.environment_info is None and run["start"].environment_info is None
    assert run.trigger is None
    with pytest.raises(ValueError):
        list(task.loglines("stdin"))


def test_notebook_html_for_every_client_object(db_path: Path) -> None:
    run_flow(CLI, db=db_path)
    run = _run(db_path, "CliFlow")
    flow = Flow("CliFlow", ledger=db_path)
    assert run.pathspec in flow._repr_html_()
    step = run["fan"]
    html = step._repr_html_()
    assert html.count(f"{run.pathspec}/fan/") == 3
    when = run["start"].task["when"]
    # a pickled value shows its stored preview: nothing is unpickled for a notebook cell
    assert "datetime.date" in when._repr_html_() and "pickle" in when._repr_html_()
    data_html = run["start"].task.data._repr_html_()
    assert "<table>" in data_html and "big" in data_html and "zzzzzzzzzz" in data_html
    dag = run._repr_html_()
    assert "start → fan  (foreach self.items)" in dag and "join → end" in dag


def test_html_escapes_values(tmp_path: Path, db_path: Path) -> None:
    flow = tmp_path / "html_flow.py"
    flow.write_text(
        "from ledgerflow import FlowSpec, step\n"
        "class HtmlFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        self.s = '<script>alert(1)</script>'\n"
        "        self.next(self.end)\n"
        "    @step\n    def end(self):\n        pass\n"
        "if __name__ == '__main__':\n    HtmlFlow()\n"
    )
    run_flow(flow, db=db_path)
    task = _run(db_path, "HtmlFlow")["start"].task
    for html in (task["s"]._repr_html_(), task.data._repr_html_()):
        assert "<script>" not in html and "&lt;script&gt;" in html


def test_running_a_flow_in_a_notebook_kernel_says_to_use_nbrunner() -> None:
    # tests/test_notebook.py runs it in a real kernel; here the check itself
    from ledgerflow.flowspec import _in_notebook_kernel

    assert _in_notebook_kernel() is False
    assert os.environ.get("LEDGERFLOW_DB")  # the fixture's ledger, untouched


def test_flow_level_environment_decorators_and_secrets_are_warned_about() -> None:
    from ledgerflow import FlowSpec, pypi_base, secrets, step
    from ledgerflow.decorators import unapplied_warnings

    @pypi_base(packages={"click": "", "surely-not-installed-pkg": "2.0"})
    class BaseFlow(FlowSpec):
        @secrets(sources=["db-creds"])
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    warnings = unapplied_warnings(BaseFlow, environment="local")
    assert len(warnings) == 2
    assert "@pypi_base" in warnings[0] and "'surely-not-installed-pkg==2.0'" in warnings[0]
    assert "@secrets on step start" in warnings[1] and "environment" in warnings[1]
    assert unapplied_warnings(FlowSpec) == []


def test_a_default_goes_through_its_parameters_type(db_path: Path) -> None:
    """As Metaflow (click converts a default as it converts a given value): "5" with
    type=int is 5, 1 with type=float is 1.0, and a default the type refuses is a usage error
    naming the option, unless a value is given."""
    flow = FLOWS / "compat" / "typed_defaults.py"
    refused = run_flow(flow, db=db_path, check=2)
    assert "Invalid value for '--bad': 'x' is not a valid integer" in refused.stderr
    assert "Traceback" not in refused.stderr
    run_flow(flow, "--bad", "3", db=db_path)
    namespace(None)
    seen = Flow("TypedDefaults", ledger=str(db_path)).latest_run.data.seen
    assert seen == (5, 1.0, "7", True)
    assert [type(v) for v in seen] == [int, float, str, bool]
