"""A flow defined in a notebook cell runs with NBRunner, in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import query

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

FLOW_CELL = """\
from ledgerflow import FlowSpec, NBRunner, Parameter, step

class NotebookFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.result = self.alpha * 10
        print("in the start step")
        self.next(self.end)

    @step
    def end(self):
        pass

run = NBRunner(NotebookFlow, show_output=False).nbrun(alpha=3)
print("RESULT", run.data.result, run.successful)
"""

RUN_AGAIN_CELL = """\
again = NBRunner(NotebookFlow, show_output=False).nbrun(alpha=4)
print("AGAIN", again.data.result, again.id != run.id)
"""

DIRECT_CELL = """\
try:
    NotebookFlow()
except Exception as e:
    print("DIRECT", e)
"""


def _outputs(cell: object) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_nbrunner_runs_a_flow_defined_in_a_cell(tmp_path: Path, db_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (FLOW_CELL, RUN_AGAIN_CELL, DIRECT_CELL)]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

    assert "RESULT 30 True" in _outputs(nb.cells[0])
    # a flow defined in an earlier cell runs too
    assert "AGAIN 40 True" in _outputs(nb.cells[1])
    # calling the flow directly says what to do instead of parsing the kernel's argv
    direct = _outputs(nb.cells[2])
    assert "DIRECT" in direct and "NBRunner(NotebookFlow).nbrun()" in direct
    assert "No such option" not in direct
    # the runs are in the ledger, and the temporary flow files are gone
    rows = query(db_path, "select status from runs where flow = 'NotebookFlow'")
    assert rows == [("succeeded",), ("succeeded",)]
    assert not list(tmp_path.glob("NotebookFlow*.py"))
