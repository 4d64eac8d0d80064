"""Configs (Metaflow 2.13+, issue 27): `Config`, `config_expr`, `--config`/`--config-value`,
values in decorators and steps, recorded with the run, reused by resume. The flow
(tests/flows/configs/config_flow.py) was run under Metaflow 2.19.39 with the import
switched: every value read back below is what Metaflow's Client API gave for it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerflow import Config, ConfigValue, Run, Runner, config_expr, namespace

from .helpers import FLOWS, run_flow

FLOW_DIR = FLOWS / "configs"


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    """The flow and its default config file, in the test's folder (the default path is
    relative to where the command runs, as in Metaflow)."""
    for name in ("config_flow.py", "cfg.json"):
        shutil.copy(FLOW_DIR / name, tmp_path / name)
    return tmp_path / "config_flow.py"


def _run(db: Path, run_id: str) -> Run:
    namespace(None)
    return Run(f"ConfigFlow/{run_id}", ledger=db)


def _decorators(run: Run) -> dict[str, dict]:
    info = run["start"].task["_graph_info"].data
    return {d["name"]: d["attributes"] for d in info["steps"]["start"]["decorators"]}


@pytest.mark.parametrize("executor", ["process", "spawn", "thread"])
def test_config_values_reach_decorators_and_steps_as_in_metaflow(flow, db_path, executor):
    proc = run_flow(flow, "--executor", executor, db=db_path)
    run = _run(db_path, proc.stdout.strip().splitlines()[-1])
    start = run["start"].task
    # What Metaflow 2.19.39 gives for the same flow.
    assert start.data.model == "resnet" and start.data.layers == [1, 2, 3]
    assert start.data.owner == "ana"  # parser=
    assert start.data.mode == "FAST"  # @environment(vars={...: config_expr(...)})
    assert start.data.alpha_seen == 0.25  # Parameter(default=cfg.alpha)
    assert start.data.project == "configured"  # @project(name=config_expr("cfg.project"))
    assert start.data.cfg_is_dict is True
    assert "project:configured" in run.tags
    assert run["end"].task.data.limits_cpu == 2
    assert json.loads(run["end"].task.data.dumped)["model"]["name"] == "resnet"
    decorators = _decorators(run)
    assert decorators["resources"]["cpu"] == 2 and decorators["resources"]["memory"] == 2000
    assert decorators["retry"]["times"] == 1


def test_configs_are_recorded_with_the_run_as_plain_dicts(flow, db_path):
    proc = run_flow(flow, db=db_path)
    run_id = proc.stdout.strip().splitlines()[-1]
    run = _run(db_path, run_id)
    # Metaflow stores a config as a dict artifact of every task, under its attribute name.
    assert run.data.cfg == {"project": "configured", "alpha": 0.25,
                            "model": {"name": "resnet", "layers": [1, 2, 3]}}  # fmt: skip
    assert type(run.data.limits) is dict and run.data.labels == {"team": "ml", "owner": "ana"}
    assert run["start"].task["limits"].data == {"cpu": 2, "retries": 1, "mode": "fast"}
    conn = sqlite3.connect(db_path)
    (params,) = conn.execute("select params from run where run_id = ?", (run_id,)).fetchone()
    (encoding,) = conn.execute(
        "select b.encoding from artifacts a join blob b on b.sha = a.sha "
        "where a.run_id = ? and a.name = 'cfg' and a.step = 'start'", (run_id,)
    ).fetchone()  # fmt: skip
    conn.close()
    assert json.loads(params)["limits"] == {"cpu": 2, "retries": 1, "mode": "fast"}
    assert encoding == "json"  # never a pickle


def test_config_and_config_value_options(flow, db_path, tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"project": "p2", "alpha": 0.5, "model": {"name": "vit", "layers": []}}')
    proc = run_flow(flow, db=db_path, top=("--quiet", "--config", "cfg", str(other),
                    "--config-value", "limits", '{"cpu": 4, "retries": 0, "mode": "slow"}'))  # fmt: skip
    run = _run(db_path, proc.stdout.strip().splitlines()[-1])
    start = run["start"].task
    assert (start.data.model, start.data.mode, start.data.alpha_seen) == ("vit", "SLOW", 0.5)
    assert "project:p2" in run.tags and _decorators(run)["retry"]["times"] == 0
    # A run option still overrides a Parameter whose default came from a config.
    proc = run_flow(flow, "--alpha", "0.75", db=db_path)
    assert _run(db_path, proc.stdout.strip().splitlines()[-1])["start"].task.data.alpha_seen == 0.75


@pytest.mark.parametrize("top, says", [
    (("--config-value", "limits", "{not json"),
     "config 'limits': --config-value is not valid JSON"),
    (("--config-value", "limits", "[1, 2]"), "config 'limits': --config-value holds a list"),
    (("--config", "cfg", "missing.json"), "config 'cfg': cannot read file missing.json"),
    (("--config-value", "nope", "{}"), "ConfigFlow has no config named 'nope' (its configs:"),
    (("--config", "cfg", "cfg.json", "--config-value", "cfg", "{}"),
     "config 'cfg' is given both --config and --config-value"),
    (("--config-value", "limits", '{"cpu": 1, "retries": -1, "mode": "x"}'),
     "step 'start': @retry with its config values: @retry(times=-1) needs a whole number"),
    (("--config-value", "limits", '{"cpu": 1}'),
     "step 'start': @environment: config expression 'limits.mode.upper()' could not be "
     "evaluated (AttributeError: config has no key 'mode' (keys: cpu))"),
])  # fmt: skip
def test_bad_config_values_are_one_line_and_nothing_runs(flow, db_path, top, says):
    proc = run_flow(flow, db=db_path, top=top, check=1)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], lines
    assert not db_path.exists()


def test_missing_default_file_and_required_config(db_path, tmp_path):
    shutil.copy(FLOW_DIR / "config_flow.py", tmp_path / "config_flow.py")  # no cfg.json
    proc = run_flow(tmp_path / "config_flow.py", db=db_path, check=1)
    assert proc.stderr.strip() == (
        "Error: config 'cfg': cannot read default file cfg.json (No such file or directory); "
        "check the path (relative paths start from the current directory)"
    )
    required = tmp_path / "required.py"
    required.write_text(
        "from ledgerflow import Config, FlowSpec, step\n"
        "class RequiredFlow(FlowSpec):\n"
        "    cfg = Config('cfg', required=True)\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.seen = self.cfg\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    RequiredFlow()\n"
    )
    proc = run_flow(required, db=db_path, check=1)
    assert proc.stderr.strip() == (
        "Error: config 'cfg' is required: give it with --config cfg FILE or --config-value cfg JSON"
    )
    ok = run_flow(required, db=db_path, top=("--quiet", "--config-value", "cfg", '{"a": 1}'))
    namespace(None)
    run = Run(f"RequiredFlow/{ok.stdout.strip().splitlines()[-1]}", ledger=db_path)
    assert run.data.seen == {"a": 1}


def test_resume_reuses_the_origin_runs_configs(flow, db_path, monkeypatch):
    """Metaflow's resume loads the configs of the origin run and ignores --config."""
    failed = run_flow(flow, db=db_path, check=1, top=(
        "--quiet", "--config-value", "limits", '{"cpu": 3, "retries": 0, "mode": "fail"}'))  # fmt: skip
    origin = failed.stderr.strip().splitlines()[-1].split("/")[1].split()[0]
    monkeypatch.setenv("CONFIG_FLOW_OK", "1")
    resumed = run_flow(flow, db=db_path, command="resume", top=(
        "--quiet", "--config-value", "limits", '{"cpu": 1, "retries": 0, "mode": "x"}'))  # fmt: skip
    assert (f"Warning: resume uses the configs of run {origin}; --config and --config-value "
            "are not applied.") in resumed.stderr  # fmt: skip
    run = _run(db_path, resumed.stdout.strip().splitlines()[-1])
    assert run.successful and run.data.limits == {"cpu": 3, "retries": 0, "mode": "fail"}
    assert run["end"].task.data.limits_cpu == 3
    assert _decorators(run)["resources"]["memory"] == 3000  # decorators from them too


def test_runner_passes_configs(flow, db_path):
    with Runner(str(flow), show_output=False, cwd=str(flow.parent),
                config_value=[("limits", {"cpu": 5, "retries": 0, "mode": "runner"})],
                db=str(db_path)).run() as running:  # fmt: skip
        assert running.status == "successful", running.stderr
        assert running.run["start"].task.data.mode == "RUNNER"
        assert running.run.data.limits["cpu"] == 5


def test_config_value_reads_like_metaflows():
    value = ConfigValue({"a": {"b": [1, {"c": 2}]}, "d": "x"})
    assert value.a.b[1].c == 2 and value["a"]["b"][0] == 1 and isinstance(value, dict)
    assert json.loads(json.dumps(value)) == {"a": {"b": [1, {"c": 2}]}, "d": "x"}
    assert value.to_dict() == {"a": {"b": [1, {"c": 2}]}, "d": "x"}
    for change in (lambda: value.__setitem__("d", 1), lambda: setattr(value, "d", 1),
                   lambda: value.update(d=1), lambda: value.pop("d")):  # fmt: skip
        with pytest.raises(TypeError, match="ConfigValue is immutable"):
            change()
    with pytest.raises(AttributeError, match="config has no key 'zz'"):
        _ = value.zz
    import pickle

    assert pickle.loads(pickle.dumps(value)) == value


def test_config_declaration_mistakes():
    from ledgerflow.exceptions import ParameterError

    with pytest.raises(ParameterError, match="give default= \\(a file\\) or default_value="):
        Config("c", default="x.json", default_value={"a": 1})
    expr = config_expr("cfg.a.lower()")
    assert repr(expr) == "config_expr('cfg.a.lower()')"
    assert expr({"cfg": {"a": "X"}}) == "x"


def test_a_step_cannot_assign_to_a_config(db_path, tmp_path):
    flow = tmp_path / "assign.py"
    flow.write_text(
        "from ledgerflow import Config, FlowSpec, step\n"
        "class AssignFlow(FlowSpec):\n"
        "    cfg = Config('cfg', default_value={'a': 1})\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.cfg = {'a': 2}\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    AssignFlow()\n"
    )
    proc = subprocess.run([sys.executable, str(flow), "--db", str(db_path), "run"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and "cfg" in proc.stderr
