"""Run control: @retry, @catch, @timeout, and the decorators that are only recorded."""

from __future__ import annotations

import pytest

from .helpers import FLOWS, latest_run_id, load_artifact, query, run_flow

CONTROL = FLOWS / "control"


def art(db, flow, step, name, index=None):
    return load_artifact(db, latest_run_id(db, flow), step, name, index)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_retry_succeeds_on_the_second_attempt(db_path, executor):
    run_flow(CONTROL / "retry_flow.py", "--executor", executor, db=db_path)
    attempts = query(
        db_path,
        "select attempt, status, exception_type from tasks where step='flaky' order by attempt",
    )
    assert attempts == [(0, "failed", "builtins.ConnectionError"), (1, "succeeded", None)]
    logs = query(
        db_path,
        "select t.attempt, log_text(l.task_id, l.stream) from log l join task t on t.id = l.task_id "
        "where t.step='flaky' and l.stream='stdout' order by t.attempt",
    )
    assert logs == [(0, "attempt 0\n"), (1, "attempt 1\n")]
    # the artifacts of each attempt are kept apart
    rows = query(
        db_path,
        "select attempt, value from all_artifacts where name='attempt_seen' and step='flaky' "
        "order by attempt",
    )
    assert rows == [(0, 0), (1, 1)]
    assert query(db_path, "select status from runs") == [("succeeded",)]
    # the end task descends from the successful attempt
    parent = query(
        db_path,
        """select p.attempt from task_parent tp join task c on c.id=tp.task_id
                               join task p on p.id = tp.parent_id where c.step='end'""",
    )
    assert parent == [(1,)]


def test_retries_exhausted_then_caught(db_path):
    run_flow(CONTROL / "catch_flow.py", db=db_path)
    assert art(db_path, "CatchFlow", "join", "results") == [10, None, 5]
    assert art(db_path, "CatchFlow", "join", "errors") == [None, "builtins.ZeroDivisionError", None]
    assert "division" in art(db_path, "CatchFlow", "join", "messages")[1]
    rows = query(
        db_path,
        "select foreach_index, attempt, status from tasks where step='divide' "
        "order by foreach_index, attempt",
    )
    assert rows == [(0, 0, "succeeded"), (1, 0, "failed"), (1, 1, "caught"), (2, 0, "succeeded")]
    assert art(db_path, "CatchFlow", "divide", "before", index=1) == "set before the raise"
    wrapper = art(db_path, "CatchFlow", "divide", "compute_failed", index=1)
    assert wrapper.type == "builtins.ZeroDivisionError" and "10 // self.input" in wrapper.stacktrace
    assert art(db_path, "CatchFlow", "divide", "compute_failed", index=0) is None
    assert art(db_path, "CatchFlow", "divide", "_success", index=1) is False
    assert art(db_path, "CatchFlow", "divide", "_task_ok", index=1) is True
    stdout = query(
        db_path,
        "select log_text(l.task_id, l.stream) from log l join task t on t.id=l.task_id where "
        "t.step='divide' and t.status='caught' and l.stream='stdout'",
    )[0][0]
    assert "@catch caught an exception" in stdout and "ZeroDivisionError" in stdout
    assert query(db_path, "select status from runs") == [("succeeded",)]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_timeout_fails_the_task_with_a_clear_error(db_path, executor):
    proc = run_flow(CONTROL / "timeout_flow.py", "--executor", executor, db=db_path, check=1)
    assert "Step 'slow' timed out after 1 seconds" in proc.stderr
    row = query(db_path, "select status, exception_type from tasks where step='slow'")
    assert row == [("failed", "ledgerflow.exceptions.TimeoutException")]
    assert art(db_path, "TimeoutFlow", "slow", "started") is True


def test_timeout_then_catch_lets_the_flow_go_on(db_path):
    run_flow(CONTROL / "caught_timeout_flow.py", db=db_path)
    assert (
        art(db_path, "CaughtTimeoutFlow", "end", "kind") == "ledgerflow.exceptions.TimeoutException"
    )
    assert query(db_path, "select status from tasks where step='slow'") == [("caught",)]


def test_recorded_decorators_are_accepted_and_in_graph_info(db_path, tmp_path):
    flow = tmp_path / "decorated.py"
    flow.write_text("""
import os
from ledgerflow import FlowSpec, step, resources, batch, kubernetes, conda, pypi, card, environment, project

@project(name="demo")
class DecoratedFlow(FlowSpec):
    @card
    @resources(cpu=4, memory=16000)
    @batch(gpu=1)
    @kubernetes(cpu=2)
    @conda(packages={"numpy": "2.0"})
    @pypi(packages={"pandas": "2.2"})
    @environment(vars={"GREETING": "hi"})
    @step
    def start(self):
        self.greeting = os.environ.get("GREETING")
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    DecoratedFlow()
""")
    run_flow(flow, db=db_path)
    assert art(db_path, "DecoratedFlow", "start", "greeting") == "hi"
    info = art(db_path, "DecoratedFlow", "start", "_graph_info")
    decos = {d["name"]: d["attributes"] for d in info["steps"]["start"]["decorators"]}
    assert decos["resources"]["cpu"] == 4 and decos["resources"]["memory"] == 16000
    assert {"card", "batch", "kubernetes", "conda", "pypi", "environment"} <= set(decos)


def test_catch_on_a_foreach_split_is_refused(db_path, tmp_path):
    flow = tmp_path / "bad_catch.py"
    flow.write_text("""
from ledgerflow import FlowSpec, step, catch

class BadCatchFlow(FlowSpec):
    @catch(var="e")
    @step
    def start(self):
        self.items = [1]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    BadCatchFlow()
""")
    proc = run_flow(flow, db=db_path, check=1)
    assert "@catch is not supported on foreach split step 'start'" in proc.stderr
    assert "bad_catch.py:" in proc.stderr


def test_unknown_decorator_attribute_is_one_clear_line(db_path, tmp_path):
    flow = tmp_path / "bad_retry.py"
    flow.write_text("""
from ledgerflow import FlowSpec, step, retry

class BadRetryFlow(FlowSpec):
    @retry(tims=3)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    BadRetryFlow()
""")
    proc = run_flow(flow, db=db_path, check=None)
    assert proc.returncode != 0
    assert "does not support the attribute 'tims'" in proc.stderr


def test_with_adds_decorators_to_every_step(db_path):
    exits = FLOWS / "bad" / "exits.py"
    run_flow(exits, "--with", "retry:times=1,minutes_between_retries=0", db=db_path, check=1)
    assert query(db_path, "select attempt, status from tasks order by attempt") == [
        (0, "failed"), (1, "failed")]  # fmt: skip
    run_flow(exits, "--with", "catch:var=problem", db=db_path)
    run_id = latest_run_id(db_path, "ExitsFlow")
    assert load_artifact(db_path, run_id, "start", "problem").type == "builtins.SystemExit"
    assert load_artifact(db_path, run_id, "end", "problem") is None  # reset where no error
    proc = run_flow(exits, "--with", "nope", db=db_path, check=2)
    assert "no decorator 'nope'" in proc.stderr and "Traceback" not in proc.stderr
