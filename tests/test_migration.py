"""Sharp edges met when moving a flow from Metaflow (issue 27): a step that still imports
metaflow is caught before the run, and @conda_base's warning checks the python pin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledgerflow.lint_imports import metaflow_imports

TUTORIAL = """\
from ledgerflow import FlowSpec, step


class TutorialImportFlow(FlowSpec):
    @step
    def start(self):
        {line}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TutorialImportFlow()
"""


def _flow(
    tmp: Path, line: str, command: str, db: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Metaflow's tutorial 03 pattern after the one-line switch: a step still imports
    metaflow (`line`, at line 7 of the file)."""
    flow = tmp / "tutorial_flow.py"
    flow.write_text(TUTORIAL.format(line=line))
    proc = subprocess.run([sys.executable, str(flow), "--db", str(db), command],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return flow, proc


@pytest.mark.parametrize("written, instead", [
    ("from metaflow import Flow, get_metadata", "from ledgerflow import Flow, get_metadata"),
    ("import metaflow", "import ledgerflow as metaflow"),
    ("from metaflow.cards import Markdown as Md", "from ledgerflow.cards import Markdown as Md"),
    ("import metaflow.cards", "import ledgerflow.cards"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_step_importing_metaflow_is_caught_before_anything_runs(written, instead, command,
                                                                  tmp_path, db_path):  # fmt: skip
    flow, proc = _flow(tmp_path, written, command, db_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: {flow}:7: Step 'start' imports metaflow (`{written}`): steps read "
        f"this ledger through ledgerflow, not Metaflow's datastore; write `{instead}` instead "
        "(or end the line with `# ledgerflow: allow-metaflow` if it really means Metaflow)"
    ]
    assert not db_path.exists()  # nothing ran


def test_an_import_of_metaflow_marked_as_meant_is_left_alone(tmp_path, db_path):
    _, proc = _flow(tmp_path, "import metaflow  # ledgerflow: allow-metaflow", "check", db_path)
    assert proc.returncode == 0, proc.stderr
    _, proc = _flow(tmp_path, "import json", "check", db_path)
    assert proc.returncode == 0, proc.stderr


def test_metaflow_imports_reports_lines_of_the_file():
    def step_body(self):
        x = 1
        from metaflow import current  # noqa: F401

        return x

    ((line, written, instead),) = metaflow_imports(step_body)
    assert line == step_body.__code__.co_firstlineno + 2
    assert (written, instead) == ("from metaflow import current  # noqa: F401",
                                  "from ledgerflow import current")  # fmt: skip


CONDA_FLOW = """\
from ledgerflow import FlowSpec, conda, conda_base, step


@conda_base(python="{pin}", libraries={{"click": ""}})
class CondaFlow(FlowSpec):
    @conda(python="{step_pin}")
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CondaFlow()
"""


def test_conda_base_warning_checks_the_python_pin(tmp_path, db_path):
    here = ".".join(str(p) for p in sys.version_info[:3])
    flow = tmp_path / "conda_flow.py"
    flow.write_text(CONDA_FLOW.format(pin="3.9.10", step_pin=here))
    proc = subprocess.run([sys.executable, str(flow), "--db", str(db_path), "--quiet", "run"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    base, step = [line for line in proc.stderr.splitlines() if line.startswith("Warning:")]
    assert base.endswith(
        "Every package it lists is installed here. It pins python 3.9.10 but this is Python "
        f"{here}: use a Python of that version to run it as pinned."
    ), base
    assert step.endswith("Every package it lists is installed here."), step  # its pin matches
