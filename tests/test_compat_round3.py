"""Metaflow compatibility, round 3 (issue 27 items 1-9, issue 31 item 1 and the @catch
wording): each test is one behaviour, checked against Metaflow 2.19.39 by running the same
flow file (import line changed) under both; each docstring says what Metaflow did.

Most tests read one run of tests/flows/compat/round3_flow.py, made once for the module."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ledgerflow import Run, Task, namespace

from .helpers import FLOWS, latest_run_id, query, run_flow

COMPAT = FLOWS / "compat"
ROUND3 = COMPAT / "round3_flow.py"


@pytest.fixture(scope="module")
def round3(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(ledger, run pathspec, what the run printed) of one run of round3_flow.py."""
    db = tmp_path_factory.mktemp("round3") / "ledgerflow.db"
    proc = run_flow(ROUND3, "--tag", "mytag", db=db, top=())
    return db, f"Round3Flow/{latest_run_id(db, 'Round3Flow')}", proc.stdout + proc.stderr


def _run(round3: tuple[Path, str, str]) -> Run:
    namespace(None)
    return Run(round3[1], ledger=round3[0])


def _attempts(task: Task) -> list[str]:
    return sorted(m.value for m in task.metadata if m.type == "attempt")


# -- 1. attempt metadata -------------------------------------------------------------------


def test_every_attempt_has_its_own_attempt_metadata(round3) -> None:
    """Metaflow: a task that failed twice then succeeded lists `attempt` 0, 1, 2 in
    task.metadata, `attempt_ok` False, False, True; `Task(..., attempt=0)` lists attempt
    0's only; metadata_dict gives the newest (attempt 2). A task whose process was killed
    twice and then handled by @catch's fallback lists 0, 1, 2 and one `attempt_ok` (True):
    an attempt whose process died records none (Metaflow's test/core tag_catch.py)."""
    run = _run(round3)
    flaky = run["flaky"].task
    assert _attempts(flaky) == ["0", "1", "2"]
    ordered = sorted(flaky.metadata, key=lambda m: m.created_at)
    assert [m.value for m in ordered if m.name == "attempt_ok"] == ["False", "False", "True"]
    assert {m.type for m in flaky.metadata if m.name == "attempt_ok"} == {"internal_attempt_status"}
    assert flaky.metadata_dict["attempt"] == "2" and flaky.metadata_dict["attempt_ok"] == "True"
    assert flaky.metadata_dict["attempt-done"] == "2"
    first = Task(flaky.pathspec, attempt=0, ledger=round3[0])
    assert _attempts(first) == ["0"] and first.metadata_dict["attempt_ok"] == "False"
    killed = run["killed"].task
    assert _attempts(killed) == ["0", "1", "2"]
    assert [m.value for m in killed.metadata if m.name == "attempt_ok"] == ["True"]
    assert _attempts(run["start"].task) == ["0"]


# -- 2. class-level constants ---------------------------------------------------------------


def test_class_constants_are_artifacts_of_every_task_and_read_only(round3) -> None:
    """Metaflow: `int_const = 123`, a string and a tuple at class level are readable from
    every task's data (start to end, joins too) and listed in `_graph_info['constants']`
    with their types; `self.int_const = 5` in a step raises AttributeError ("Flow level
    attributes and Parameters are not modifiable")."""
    run = _run(round3)
    for step in run:
        for task in step:
            data = task.data
            assert (data.int_const, data.str_const, data.tuple_const) == (
                123, "this is a constant", (1, 2))  # fmt: skip
    start = run["start"].task
    assert "class-level constant of Round3Flow" in start.data.assign_error
    assert start["_graph_info"].data["constants"] == [
        {"name": "int_const", "type": "int"},
        {"name": "str_const", "type": "str"},
        {"name": "tuple_const", "type": "tuple"},
    ]
    # what start set from the class is inherited by the tasks after it, as parameters are
    rows = query(round3[0], "select step, inherited from all_artifacts where name = 'int_const'"
                            " and run_id = ? order by step", (run.id,))  # fmt: skip
    assert dict(rows)["start"] == 0 and dict(rows)["end"] == 1


def test_assigning_a_class_constant_fails_the_step_like_metaflow(tmp_path: Path) -> None:
    """Metaflow raises AttributeError; ledgerflow's is one (ParameterAssignmentError),
    with a message naming the step and the attribute."""
    from ledgerflow import FlowSpec
    from ledgerflow.exceptions import ParameterAssignmentError
    from ledgerflow.flowspec import TaskState, class_constants

    class Consts(FlowSpec):
        limit = 3
        names = ("a", "b")

        def helper(self) -> int:
            return 1

    assert class_constants(Consts) == {"limit": 3, "names": ("a", "b")}
    flow = Consts._for_task(TaskState(step_name="start", graph=None))
    with pytest.raises(AttributeError) as caught:
        flow.limit = 4
    assert isinstance(caught.value, ParameterAssignmentError)
    assert "Step 'start' sets self.limit" in str(caught.value)
    flow.other = 5  # any other name is an artifact as before
    assert flow.other == 5


def test_a_class_attribute_that_cannot_be_stored_is_refused_in_one_line(db_path: Path) -> None:
    """Metaflow refuses the run at its start ("Cannot pickle dump artifact named lock")."""
    proc = run_flow(COMPAT / "unstorable_constant.py", db=db_path, check=1)
    assert "Traceback" not in proc.stderr
    line = [x for x in proc.stderr.splitlines() if "UnstorableFlow.lock" in x]
    assert len(line) == 1 and "make it private" in line[0], proc.stderr
    assert query(db_path, "select count(*) from run") == [(0,)]  # nothing half-written


# -- 3. current.tags ------------------------------------------------------------------------


def test_current_tags_is_a_set_the_step_may_change(round3) -> None:
    """Metaflow: `current.tags` is a `set` of the run's user tags (no system tags);
    `.add`/`.update` work inside the step and do not tag the run."""
    run = _run(round3)
    data = run["start"].task.data
    assert data.tags_type == "set"
    assert data.tags_seen == ["added_in_step", "also_added", "mytag"]
    assert "added_in_step" not in run.tags and "mytag" in run.tags


# -- 4. self._foreach_stack ------------------------------------------------------------------


def test_foreach_stack_is_readable_inside_a_step(round3) -> None:
    """Metaflow: `self._foreach_stack` in a foreach task is a list of ForeachFrame(step,
    var, num_splits, index, value), value being str() of a plain item ('a', not "'a'")."""
    run = _run(round3)
    stacks = sorted(t.data.stack_in_step for t in run["each"])
    assert stacks == [[("each", "items", 2, 0, "a")], [("each", "items", 2, 1, "b")]]
    assert run["flaky"].task["_foreach_values"].data == ["a", "b"]


def test_foreach_values_are_named_as_metaflow_names_them() -> None:
    """Metaflow's _get_foreach_item_value: str() of str/int/float/bool, else a reprlib
    repr, at most 30 characters."""
    from ledgerflow.flowspec import foreach_value_text

    assert foreach_value_text("a") == "a" and foreach_value_text(3) == "3"
    assert foreach_value_text("x" * 40) == "x" * 30
    assert foreach_value_text({"k": list(range(50))}) == "{'k': [0, 1, 2, 3, 4, 5, ...]}"[:30]


# -- 5. DAGNode fields -----------------------------------------------------------------------


def test_graph_nodes_have_metaflows_fields(round3) -> None:
    """Metaflow's `self._graph['start']` has parallel_step False, num_parallel 0,
    parallel_foreach False, is_start_step/is_end_step False (set only for a step marked so),
    wrappers [], config_decorators [], node_info {}; `.decorators` are decorator objects."""
    data = _run(round3)["start"].task.data
    assert data.node_fields == {
        "parallel_step": False, "num_parallel": 0, "parallel_foreach": False,
        "is_start_step": False, "is_end_step": False, "wrappers": [],
        "config_decorators": [], "node_info": {},
    }  # fmt: skip
    assert data.flaky_decorators == ["retry"]


# -- 6. @catch when the process dies ---------------------------------------------------------


def test_catch_runs_a_fallback_attempt_when_the_process_dies(round3) -> None:
    """Metaflow (test/core tag_catch.py): a @catch step killed by SIGKILL on every attempt
    of @retry(times=1) gets one more attempt that does not run the step, recording
    FailureHandledByCatch ("Task execution kept failing over 2 attempts. ...") in the
    @catch variable; the run goes on and succeeds. The console says "Task fallback is
    starting to handle the failure.". (Its type there is
    metaflow.plugins.catch_decorator.FailureHandledByCatch; here ledgerflow's module.)"""
    db, _, printed = round3
    run = _run(round3)
    assert run.successful
    failure = run["killed"].task.data.killed_failure
    assert failure.type == "ledgerflow.exceptions.FailureHandledByCatch"
    assert failure.exception.startswith("Task execution kept failing over 2 attempts.")
    assert "Task fallback is starting to handle the failure." in printed
    rows = query(db, "select attempt, status from tasks where step = 'killed' order by attempt")
    assert rows == [(0, "failed"), (1, "failed"), (2, "caught")]
    # the next step sees the @catch variable, as after any caught failure
    assert run["secret_step"].task.data.killed_failure.type.endswith("FailureHandledByCatch")


def test_only_catch_gets_a_fallback_and_only_for_a_dead_process() -> None:
    """Metaflow's runtime retries while attempts < @retry's times + @catch's 3 fallback
    retries (catch_decorator.step_task_retry_count), and a step that raised is caught on
    its last @retry attempt, so only a dead process reaches the fallback; without @catch
    there is none."""
    from ledgerflow import FlowSpec, catch, retry, step
    from ledgerflow.attempts import may_retry
    from ledgerflow.task import TaskResult, TaskSpec

    class Caught(FlowSpec):
        @catch(var="e")
        @retry(times=1)
        @step
        def start(self):
            self.next(self.end)

        @retry(times=1)
        @step
        def end(self):
            pass

    def spec(step: str, attempt: int) -> TaskSpec:
        return TaskSpec("f.py", "m", "Caught", "db", "Caught", "1", 1, step, "1",
                        attempt=attempt, max_retries=1)  # fmt: skip

    def result(s: TaskSpec, crashed: bool) -> TaskResult:
        kind = "ledgerflow.exceptions.TaskCrashed" if crashed else "builtins.ValueError"
        return TaskResult(s, "failed", "", "", exception_type=kind)

    assert may_retry(Caught, spec("start", 0), result(spec("start", 0), crashed=False))
    assert may_retry(Caught, spec("start", 1), result(spec("start", 1), crashed=True))
    assert not may_retry(Caught, spec("start", 1), result(spec("start", 1), crashed=False))
    assert not may_retry(Caught, spec("end", 1), result(spec("end", 1), crashed=True))
    assert not may_retry(Caught, spec("start", 4), result(spec("start", 4), crashed=True))


# -- 8. a segfault ---------------------------------------------------------------------------


def test_a_segfault_says_so_in_the_tasks_stderr(round3) -> None:
    """Metaflow (test/core detect_segfault.py): the failed attempt's stdout keeps what it
    printed ("Crash and burn!") and its stderr reads "Task failed with a segmentation
    fault."; under @catch the fallback attempt then records FailureHandledByCatch."""
    run = _run(round3)
    task = run["segfault"].task
    first = Task(task.pathspec, attempt=0, ledger=round3[0])
    assert first.stdout == "Crash and burn!\n"
    assert "Task failed with a segmentation fault." in first.stderr
    assert "signal 11 (SIGSEGV)" in first.stderr
    assert task.current_attempt == 1
    assert task.data.segfault_failure.type.endswith("FailureHandledByCatch")


# -- the @catch note --------------------------------------------------------------------------


def test_catch_names_the_task_as_metaflow_does(round3) -> None:
    """Metaflow prints "@catch caught an exception from <flow Round3Flow step each[0]
    (input: a)>" to the task's stdout (and "<flow Round3Flow step segfault>" outside a
    foreach)."""
    run = _run(round3)
    caught = next(t for t in run["each"] if t.index == 0)
    assert caught.stdout.startswith(
        "@catch caught an exception from <flow Round3Flow step each[0] (input: a)>\n"
    )
    assert run["segfault"].task.stdout.startswith(
        "@catch caught an exception from <flow Round3Flow step segfault>\n"
    )


# -- 7. tag list --flat -----------------------------------------------------------------------


def test_tag_list_flat_prints_one_tag_per_line(round3) -> None:
    """Metaflow: `tag list --flat` prints every tag of the run(s), one per line, system tags
    too unless --hide-system-tags; with a --group-by-* option it is refused."""
    db = round3[0]
    run_id = round3[1].split("/")[1]
    out = run_flow(ROUND3, "list", "--flat", run_id, db=db, command="tag").stdout.split()
    assert "mytag" in out and "runtime:dev" in out and out == sorted(set(out))
    user = run_flow(ROUND3, "list", "--flat", "--hide-system-tags", "--all", db=db,
                    command="tag").stdout.split()  # fmt: skip
    assert user == ["mytag"]
    refused = run_flow(ROUND3, "list", "--flat", "--group-by-run", db=db, command="tag",
                       check=2)  # fmt: skip
    assert "--flat cannot be used with any --group-by-* option" in refused.stderr


# -- 9. @secrets inline -----------------------------------------------------------------------


def test_secrets_inline_sources_are_set_while_the_step_runs(round3) -> None:
    """Metaflow (test/core secrets_decorator.py): @secrets(sources=[{"type": "inline", ...}])
    sets each `env_vars` entry in the step's environment; the next task does not have them.
    ledgerflow stores only their names in _graph_info, and does not warn about them."""
    db, _, printed = round3
    run = _run(round3)
    assert run["secret_step"].task.data.secrets_seen == [
        "Pizza is a vegetable.", "How do eels reproduce?"]  # fmt: skip
    assert run["end"].task.data.secret_after is None
    info = json.dumps(run["start"].task["_graph_info"].data)
    assert "secret_1" in info and "Pizza" not in info
    assert "@secrets" not in printed


def test_secrets_sources_are_checked_as_metaflow_checks_them(monkeypatch) -> None:
    """Metaflow fails the task for a bad inline source; ledgerflow refuses it when the flow
    loads, in one line. A variable already in the environment is refused unless
    allow_override=True, as in Metaflow; other source types are recorded and warned about."""
    from ledgerflow import secrets
    from ledgerflow.decorators import unapplied_warnings
    from ledgerflow.exceptions import LedgerflowError, MetaflowException
    from ledgerflow.secret_sources import applied, unapplied

    def inline(env: dict) -> list:
        return [{"type": "inline", "id": "x", "options": {"env_vars": env}}]

    for bad, words in [({"METAFLOW_X": "1"}, "disallowed env var name"),
                       ({"1bad": "1"}, "invalid env var name"),
                       ({"N": 1}, "non string value")]:  # fmt: skip
        with pytest.raises(LedgerflowError, match=words):
            secrets(sources=inline(bad))
    with pytest.raises(LedgerflowError, match="string or a dict"):
        secrets(sources=[3])
    monkeypatch.setenv("TAKEN", "before")
    deco = secrets(sources=inline({"TAKEN": "after"}))
    with pytest.raises(MetaflowException, match="already exists in env"), applied(deco):
        pass
    with applied(secrets(sources=inline({"TAKEN": "after"}), allow_override=True)):
        assert os.environ["TAKEN"] == "after"
    assert os.environ["TAKEN"] == "before"
    assert unapplied({"sources": ["db-creds", *inline({"A": "1"})]}) == ["db-creds"]

    from ledgerflow import FlowSpec, step

    class Secreted(FlowSpec):
        @secrets(sources=inline({"A": "1"}))
        @step
        def start(self):
            self.next(self.end)

        @secrets(sources=["db-creds", *inline({"B": "1"})])
        @step
        def end(self):
            pass

    warned = unapplied_warnings(Secreted)
    assert len(warned) == 1 and "@secrets on step end is recorded, not applied" in warned[0]


# -- issue 31: retries spaced as Metaflow's ----------------------------------------------------


def test_a_transient_failure_of_one_second_is_retried_past(tmp_path: Path, db_path: Path) -> None:
    """Metaflow's local attempts are new interpreters, ~0.3 s apart, so @retry(times=3)
    spans more than a second and gets past a failure that lasts the first second (ran
    under Metaflow: success on attempt 3 or 4). ledgerflow's retries pause 0.2, 0.4,
    0.8 s: attempt 3 starts ~1.4 s after the first (without the pauses all four failed
    within a few milliseconds). This run takes about 1.5 s; no other test waits."""
    run_flow(COMPAT / "retry_first_second.py", "--stamp", str(tmp_path / "t"), db=db_path)
    namespace(None)
    run = Run(f"RetryFirstSecondFlow/{latest_run_id(db_path, 'RetryFirstSecondFlow')}",
              ledger=db_path)  # fmt: skip
    start = run["start"].task
    assert run.successful and start.data.attempt == 3
    assert 1.0 <= start.data.waited < 5.0


def test_retry_pauses_grow_and_stay_short() -> None:
    """`minutes_between_retries` does not make a laptop wait (Metaflow applies it on remote
    compute only: batch/kubernetes/argo read it, its local runtime never sleeps);
    `minutes_between_retries=0` means no pause."""
    from ledgerflow import FlowSpec, retry, step
    from ledgerflow.attempts import pause_before
    from ledgerflow.task import TaskSpec

    class Paused(FlowSpec):
        @retry(times=9)
        @step
        def start(self):
            self.next(self.end)

        @retry(times=9, minutes_between_retries=0)
        @step
        def end(self):
            pass

    def spec(step: str, attempt: int) -> TaskSpec:
        return TaskSpec("f.py", "m", "Paused", "db", "Paused", "1", 1, step, "1",
                        attempt=attempt, max_retries=9)  # fmt: skip

    pauses = [pause_before(Paused, spec("start", n)) for n in range(7)]
    assert pauses == [0.0, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert [pause_before(Paused, spec("end", n)) for n in range(3)] == [0.0, 0.0, 0.0]
