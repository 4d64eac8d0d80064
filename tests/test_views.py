"""The documented SQL views are a public contract: every column the README documents
exists, and the README's example queries run through plain sqlite3 and answer correctly."""

from __future__ import annotations

import re
import textwrap

import pytest

from .helpers import ROOT, query, run_flow

README = (ROOT / "README.md").read_text()

ACCURACY_FLOW = """
from ledgerflow import FlowSpec, Parameter, step


class AccuracyFlow(FlowSpec):
    accuracy_in = Parameter("accuracy_in", default=0.5)
    fail = Parameter("fail", default=False)

    @step
    def start(self):
        self.blob = b"x" * {size}
        self.next(self.train)

    @step
    def train(self):
        if self.fail:
            raise RuntimeError("diverged")
        self.accuracy = self.accuracy_in
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AccuracyFlow()
"""


def documented_columns() -> dict[str, list[str]]:
    """{view: [columns]} from the README's '### `view`' tables."""
    views: dict[str, list[str]] = {}
    for match in re.finditer(
        r"^### `(\w+)`(?: and `(\w+)`)?\n(.*?)(?=^### |^## )", README, re.MULTILINE | re.DOTALL
    ):
        names = [n for n in match.group(1, 2) if n]
        columns = re.findall(r"^\| `(\w+)` \|", match.group(3), re.MULTILINE)
        for name in names:
            views[name] = columns
    return views


def readme_queries() -> list[str]:
    section = README.split("### Example queries", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.DOTALL)


@pytest.fixture
def history(tmp_path, db_path):
    flow = tmp_path / "accuracy_flow.py"
    flow.write_text(textwrap.dedent(ACCURACY_FLOW.replace("{size}", "100000")))
    for accuracy in ("0.81", "0.93", "0.77"):
        run_flow(flow, "--accuracy_in", accuracy, db=db_path)
    run_flow(flow, "--fail", "true", db=db_path, check=1)
    return db_path


def test_every_documented_column_exists(history):
    views = documented_columns()
    assert set(views) == {"runs", "tasks", "artifacts", "all_artifacts"}
    for view, columns in views.items():
        actual = [r[1] for r in query(history, f"pragma table_info({view})")]
        missing = [c for c in columns if c not in actual]
        assert not missing, f"view {view} lacks documented columns {missing}"
        assert len(columns) >= 5


def test_required_columns_are_documented():
    views = documented_columns()
    assert {
        "flow",
        "run_id",
        "status",
        "created_at",
        "finished_at",
        "duration_s",
        "user",
        "tags",
        "params",
    } <= set(views["runs"])
    assert {
        "flow",
        "run_id",
        "step",
        "task_id",
        "pathspec",
        "status",
        "attempt",
        "foreach_index",
        "started_at",
        "finished_at",
    } <= set(views["tasks"])
    assert {
        "flow",
        "run_id",
        "step",
        "task_id",
        "name",
        "value",
        "type",
        "size",
        "sha",
        "encoding",
        "created_at",
    } <= set(views["artifacts"])


def test_readme_queries_answer_correctly(history):
    best, largest, failed = readme_queries()
    rows = query(history, best)
    assert [r[3] for r in rows] == [0.93, 0.81, 0.77]
    assert all(r[0] == "AccuracyFlow" and r[2] == "train" for r in rows)
    rows = query(history, largest)
    assert rows[0][1] >= 100000 and rows[0][0].endswith("/start/1/blob")
    rows = query(history, failed)
    assert len(rows) == 1
    assert rows[0][0].startswith("AccuracyFlow/") and rows[0][0].endswith("/train/2")
    assert rows[0][1:3] == ("builtins.RuntimeError", "diverged")


def test_times_are_iso_utc_with_microseconds(history):
    for (created,) in query(history, "select created_at from runs"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created)


def test_scalar_values_are_typed_for_sql(history):
    rows = query(history, "select typeof(value) from artifacts where name = 'accuracy'")
    assert {r[0] for r in rows} == {"real"}
    assert query(
        history, "select count(*) from artifacts where name='accuracy' and value > 0.9"
    ) == [(1,)]
