"""NBRunner's sharp edges for users coming from Metaflow (issue 27), in a real Jupyter
kernel: imports in an earlier cell get a hint naming the import to add (not `NameError:
FlowSpec`), and a run that cannot start leaves no NotebookFlow*.py file behind."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

IMPORTS_CELL = "from ledgerflow import FlowSpec, NBRunner, Parameter, step\n"

FLOW_CELL = """\
class SplitCellFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass

try:
    NBRunner(SplitCellFlow, show_output=False).nbrun()
except Exception as e:
    print("ERROR", type(e).__name__, e)
"""

SELF_CONTAINED_CELL = """\
from ledgerflow import FlowSpec, NBRunner, Parameter, step

class WholeCellFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass

try:
    NBRunner(WholeCellFlow, show_output=False).nbrun(alpha="not a number")
except Exception as e:
    print("FAILED", type(e).__name__, e)
"""


def _outputs(cell: object) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_imports_in_an_earlier_cell_get_a_hint_and_failures_leave_no_files(
    tmp_path: Path, db_path: Path
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (IMPORTS_CELL, FLOW_CELL,
                                                        SELF_CONTAINED_CELL)]  # fmt: skip
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    hint = _outputs(nb.cells[1]).strip()
    assert hint == (
        "ERROR LedgerflowError NBRunner: the cell defining SplitCellFlow uses FlowSpec, "
        "Parameter, step without importing or defining them (an earlier cell does?); NBRunner "
        "runs that cell on its own as a script, so add `from ledgerflow import FlowSpec, "
        "Parameter, step` to it"
    ), hint
    failed = _outputs(nb.cells[2])
    assert "FAILED RunnerFailed" in failed and "alpha" in failed, failed
    assert not list(tmp_path.glob("*Flow*.py"))  # neither flow left a file behind
