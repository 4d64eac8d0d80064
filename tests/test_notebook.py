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


# -- what the Client API's objects look like in a notebook (issue 28, issue 30 item 11) --------

VIEWS_CELL = """\
from ledgerflow import Flow, namespace, use_ledger
use_ledger({db!r}); namespace(None)
flow = Flow("WideFlow")
run = flow.latest_run
display(run)
display(run["fan"])
display(run["fan"].task)
display(run["start"].task["summary"])
display(flow)
frame = flow.runs_dataframe(artifacts=["total"])
print(frame[["status", "params.width", "total"]].to_string(index=False))
"""


def _html_outputs(cell: object) -> list[str]:
    return [o["data"]["text/html"] for o in cell.outputs
            if o.get("output_type") in ("display_data", "execute_result")
            and "text/html" in o.get("data", {})]  # fmt: skip


def test_notebook_views_in_a_real_kernel(tmp_path: Path, db_path: Path) -> None:
    import threading

    from ledgerflow.ui import make_server

    from .helpers import FLOWS, run_flow

    for args in (("--width", "30"), ("--width", "20", "--rate", "0.3")):
        run_flow(FLOWS / "ui" / "wide_flow.py", *args, db=db_path)
    server, url = make_server(db_path, port=0)  # `ledgerflow ui` serving this ledger
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(VIEWS_CELL.format(db=str(db_path)))]
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    run_html, step_html, task_html, art_html, flow_html = _html_outputs(nb.cells[0])
    # the run: status colour, duration, the DAG with the foreach's width, a row per step
    assert "lf-status" in run_html and "#2e7d32" in run_html and "duration" in run_html
    assert 'data-step="fan" data-status="succeeded" data-tasks="20"' in run_html
    assert "×20 tasks" in run_html and "class='lf-steps'" in run_html
    assert "total" in run_html  # the end task's artifacts, by their stored previews
    assert f"href='{url.rstrip('/')}/run/WideFlow/" in run_html  # linked to the running UI
    assert "20 succeeded" in step_html and "more tasks" not in step_html
    assert "foreach" in task_html and "over <code>items</code>" in task_html
    assert "<th>quartiles</th>" in art_html  # a small JSON value's structure
    assert flow_html.count("lf-status") == 2
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("name") == "stdout")
    assert text.split("\n")[1].split()[:2] == ["succeeded", "20"]  # newest first


def test_repr_of_a_run_with_a_malformed_graph_says_so(db_path: Path) -> None:
    import sqlite3

    from ledgerflow import Flow, namespace, use_ledger

    from .helpers import FLOWS, run_flow

    run_flow(FLOWS / "client" / "linear_flow.py", db=db_path)
    use_ledger(db_path)
    namespace(None)
    for graph, said in (('{"steps": [1]}', "no 'steps' object"), ("[]", "JSON list"),
                        ("not json", "not valid JSON"),
                        ('{"steps": {"start": {"next": 3}}}', "not a list")):  # fmt: skip
        conn = sqlite3.connect(db_path)
        conn.execute("update run set graph_info = ?", (graph,))
        conn.commit()
        conn.close()
        html = Flow("LinearFlow").latest_run._repr_html_()
        assert said.replace("'", "&#x27;") in html, graph


def test_runs_dataframe_says_when_pandas_is_missing(db_path: Path, monkeypatch) -> None:
    import sys

    from ledgerflow import Flow, namespace, use_ledger
    from ledgerflow.exceptions import LedgerflowError

    from .helpers import FLOWS, run_flow

    run_flow(FLOWS / "client" / "linear_flow.py", db=db_path)
    use_ledger(db_path)
    namespace(None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(LedgerflowError, match="needs pandas.*pip install pandas"):
        Flow("LinearFlow").runs_dataframe()


def test_runs_dataframe_filters_by_tags_in_one_query(db_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from ledgerflow import Flow, namespace, use_ledger

    from .helpers import FLOWS, run_flow

    for alpha, tag in ((5, "nightly"), (6, "adhoc"), (7, "nightly")):
        run_flow(FLOWS / "client" / "linear_flow.py", "--alpha", str(alpha), "--tag", tag,
                 db=db_path)  # fmt: skip
    use_ledger(db_path)
    namespace(None)
    frame = Flow("LinearFlow").runs_dataframe("nightly", artifacts=["result", "when"])
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    assert list(frame["params.alpha"]) == [7, 5]  # newest first
    assert list(frame["result"]) == [14, 10]  # a plain value, from the end task
    assert frame["when"].isna().all()  # a pickle: not loaded
    assert list(frame["tags"]) == [["nightly"], ["nightly"]]
    assert set(frame["status"]) == {"succeeded"} and (frame["duration"] > 0).all()
