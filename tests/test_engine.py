"""The flow engine, run through `python flow.py run` over every executor, read back with
plain sqlite3 (the Client API has its own tests)."""

from __future__ import annotations

import pytest

from .helpers import FLOWS, latest_run_id, load_artifact, query, run_flow

ENGINE = FLOWS / "engine"
EXECUTORS = ["thread", "process", "sequential"]


@pytest.fixture(params=EXECUTORS)
def executor(request) -> str:
    return request.param


def run(name: str, db, executor: str = "thread", *args: str, check: int | None = 0):
    proc = run_flow(ENGINE / f"{name}.py", "--executor", executor, *args, db=db, check=check)
    return proc


def art(db, flow, step, name, index=None):
    return load_artifact(db, latest_run_id(db, flow), step, name, index)


def test_linear_artifacts_flow_and_private_ones_are_never_stored(db_path, executor):
    run("linear", db_path, executor)
    assert art(db_path, "LinearFlow", "end", "numbers") == [1, 2, 3]
    assert art(db_path, "LinearFlow", "end", "total") == 6
    assert art(db_path, "LinearFlow", "end", "doubled") == 12
    assert query(db_path, "select count(*) from all_artifacts where name like '%scratch%'") == [
        (0,)
    ]
    assert query(db_path, "select status from runs") == [("succeeded",)]
    steps = query(db_path, "select step, status from tasks order by cast(task_id as int)")
    assert steps == [("start", "succeeded"), ("middle", "succeeded"), ("end", "succeeded")]
    out = query(
        db_path,
        "select log_text(log.task_id, log.stream) from log join task t on t.id = log.task_id "
        "where t.step='start' and stream='stdout'",
    )
    assert out == [("hello from start\n",)]


def test_foreach_keeps_order_with_non_monotonic_values(db_path, executor):
    run("foreach", db_path, executor)
    values = [5, 3, 9, 1, 7, 3]
    assert art(db_path, "ForeachFlow", "join", "squares") == [v * v for v in values]
    assert art(db_path, "ForeachFlow", "join", "positions") == list(range(6))
    assert art(db_path, "ForeachFlow", "join", "count") == 6
    for i, v in enumerate(values):
        assert art(db_path, "ForeachFlow", "square", "item", index=i) == v
        assert art(db_path, "ForeachFlow", "square", "stack", index=i) == [(i, 6, v)]
    frames = art(db_path, "ForeachFlow", "square", "_foreach_stack", index=2)
    assert [tuple(f) for f in frames] == [("square", "values", 6, 2, "9")]
    assert art(db_path, "ForeachFlow", "start", "_foreach_num_splits") == 6
    assert art(db_path, "ForeachFlow", "start", "_foreach_var") == "values"
    assert art(db_path, "ForeachFlow", "start", "_foreach_values") == [str(v) for v in values]
    indexes = query(db_path, "select foreach_index from tasks where step='square' order by 1")
    assert [r[0] for r in indexes] == list(range(6))


def test_nested_foreach(db_path, executor):
    run("nested_foreach", db_path, executor)
    assert art(db_path, "NestedForeachFlow", "outer_join", "all_labels") == [
        ["b3", "b1", "b2"], ["a3", "a1", "a2"]]  # fmt: skip
    stacks = query(db_path, "select count(*) from tasks where step='leaf'")
    assert stacks == [(6,)]
    run_id = latest_run_id(db_path, "NestedForeachFlow")
    rows = query(
        db_path,
        "select sha from all_artifacts where run_id=? and step='leaf' and name='stack'",
        (run_id,),
    )
    from ledgerflow.ledger import Ledger

    seen = sorted(Ledger.open(db_path).load(sha) for (sha,) in rows)
    assert [(0, 2, "b"), (1, 3, 1)] in seen and len(seen) == 6


def test_static_branch_join_inputs_by_name_and_merge(db_path, executor):
    run("branch", db_path, executor)
    assert art(db_path, "BranchFlow", "join", "by_name") == ["L", "R"]
    assert art(db_path, "BranchFlow", "join", "count") == 2
    assert art(db_path, "BranchFlow", "end", "side") == "joined"  # set in the join: it wins
    assert art(db_path, "BranchFlow", "end", "shared") == {"key": "value"}
    assert art(db_path, "BranchFlow", "end", "left_value") == 1
    parents = query(
        db_path,
        """
        select p.step from task_parent tp join task c on c.id = tp.task_id
        join task p on p.id = tp.parent_id where c.step = 'join' order by p.step""",
    )
    assert parents == [("left_more",), ("right",)]


def test_switch_and_a_loop_back(db_path, executor):
    run("switch_loop", db_path, executor)
    assert query(db_path, "select count(*) from tasks where step='body'") == [(3,)]
    assert art(db_path, "SwitchLoopFlow", "end", "count") == 3
    assert art(db_path, "SwitchLoopFlow", "end", "path") == "fast"
    assert query(db_path, "select count(*) from tasks where step='slow'") == [(0,)]


def test_every_merge_artifacts_rule(db_path, executor):
    run("merge_rules", db_path, executor)
    outcomes = art(db_path, "MergeRulesFlow", "join", "outcomes")
    assert outcomes["unhandled"] == ["conflict", "tmp"]
    assert outcomes["set_after_failed_merge"] is False
    assert outcomes["missing"] == ["nope"]
    assert "mutually exclusive" in outcomes["both"]
    assert outcomes["tmp_merged"] is False
    assert art(db_path, "MergeRulesFlow", "end", "conflict") == "join wins"
    assert art(db_path, "MergeRulesFlow", "end", "only_a") == "a"
    assert art(db_path, "MergeRulesFlow", "end", "only_b") == "b"
    assert art(db_path, "MergeRulesFlow", "end", "shared") == 1


def test_merge_artifacts_outside_a_join_fails_the_task(db_path):
    proc = run("merge_outside_join", db_path, check=1)
    assert "merge_artifacts can only be called in a join" in proc.stderr
    assert query(db_path, "select status, exception_type from tasks") == [
        ("failed", "ledgerflow.exceptions.LedgerflowError")]  # fmt: skip


def test_unchanged_10mb_artifact_through_three_steps_is_stored_once(db_path, executor):
    run("dedup", db_path, executor)
    assert art(db_path, "DedupFlow", "end", "same") is True
    rows = query(
        db_path, "select count(distinct sha), count(*) from all_artifacts where name='big'"
    )
    assert rows == [(1, 3)]
    assert query(db_path, "select count(*) from blob where raw_size > 10000000") == [(1,)]
    assert query(db_path, "select count(*) from artifacts where name='big'") == [(1,)]


def test_tasks_never_share_mutable_state(db_path, executor):
    run("mutation", db_path, executor)
    assert art(db_path, "MutationFlow", "join", "seen_lists") == [[0], [1], [2], [3]]
    assert art(db_path, "MutationFlow", "start", "shared") == {"seen": []}
    assert art(db_path, "MutationFlow", "start", "items") == [0, 1, 2, 3]
    assert art(db_path, "MutationFlow", "touch", "items", index=1) == [0, 1, 2, 3, "mine"]


def test_a_failing_step_is_recorded_and_the_run_fails(db_path, executor):
    proc = run("failing", db_path, executor, check=1)
    assert "ValueError: the step broke on purpose" in proc.stderr
    assert 'failing.py", line' in proc.stderr and "ledgerflow/" not in proc.stderr
    assert query(db_path, "select status from runs") == [("failed",)]
    row = query(db_path, "select status, exception_type, exception from tasks where step='boom'")
    assert row == [("failed", "builtins.ValueError", "the step broke on purpose")]
    assert art(db_path, "FailingFlow", "boom", "partial") == 42  # set before raising: kept
    assert art(db_path, "FailingFlow", "boom", "before") == "kept"
    assert art(db_path, "FailingFlow", "boom", "_success") is False
    assert query(db_path, "select count(*) from tasks where step='end'") == [(0,)]


def test_an_unserializable_artifact_fails_the_task_naming_it(db_path):
    proc = run("unpicklable", db_path, check=1)
    assert "Step 'start' cannot store artifact 'lock'" in proc.stderr
    assert query(db_path, "select status from tasks") == [("failed",)]
    assert query(db_path, "select count(*) from all_artifacts") == [(0,)]


def test_parameters_are_options_and_artifacts_of_every_task(db_path, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk")
    run_flow(
        ENGINE / "params.py",
        "--alpha",
        "0.1",
        "--must",
        "7",
        "--verbose",
        "true",
        "--config",
        '{"layers": [3]}',
        "--name-tag",
        "x",
        "--notes",
        str(notes),
        db=db_path,
    )
    seen = art(db_path, "ParamsFlow", "start", "seen")
    assert seen == {
        "alpha": 0.1,
        "epochs": 3,
        "name_tag": "x",
        "verbose": True,
        "config": {"layers": [3]},
        "must": 7,
        "notes": "remember the milk",
    }
    assert art(db_path, "ParamsFlow", "join", "alpha_in_join") == 0.1
    counts = query(
        db_path, "select step, count(*) from all_artifacts where name='alpha' group by step"
    )
    assert sorted(counts) == [("a", 1), ("b", 1), ("end", 1), ("join", 1), ("start", 1)]
    info = art(db_path, "ParamsFlow", "start", "info")
    run_id = latest_run_id(db_path, "ParamsFlow")
    assert info == {
        "flow_name": "ParamsFlow",
        "run_id": run_id,
        "step_name": "start",
        "task_id": "1",
        "pathspec": f"ParamsFlow/{run_id}/start/1",
        "retry_count": 0,
        "is_running_flow": True,
        "username": "tester",
    }
    params = query(db_path, "select params from runs")[0][0]
    assert '"alpha": 0.1' in params


@pytest.mark.parametrize("args, message", [
    ((), "Missing option '--must'"),
    (("--must", "seven"), "'seven' is not a valid integer"),
    (("--must", "1", "--config", "{bad"), "is not valid JSON"),
    (("--must", "1", "--nope", "1"), "No such option '--nope'"),
])  # fmt: skip
def test_bad_parameters_exit_2_before_any_run(db_path, args, message):
    proc = run_flow(ENGINE / "params.py", *args, db=db_path, check=2)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    if db_path.exists():
        assert query(db_path, "select count(*) from run") == [(0,)]


def test_flow_source_is_stored_with_the_run(db_path):
    run("linear", db_path)
    code = query(db_path, "select code, script_name from run")[0]
    assert code[0] == (ENGINE / "linear.py").read_text() and code[1] == "linear.py"


def test_show_and_check(db_path):
    proc = run_flow(ENGINE / "branch.py", db=db_path, command="show", top=())
    assert "left_more" in proc.stdout
    proc = run_flow(ENGINE / "branch.py", db=db_path, command="check", top=())
    assert proc.returncode == 0
    assert not db_path.exists()  # show/check never create a ledger


def test_a_switch_may_loop_back_to_an_earlier_step(db_path, executor):
    run("switch_back", db_path, executor)
    assert query(db_path, "select step, count(*) from tasks group by step order by step") == [
        ("body", 3), ("check", 3), ("end", 1), ("start", 1)]  # fmt: skip
    assert art(db_path, "LoopBackFlow", "end", "count") == 3


def test_credential_like_artifacts_warn_without_blocking(db_path):
    proc = run_flow(ENGINE / "credentials.py", db=db_path)
    warnings = [line for line in proc.stderr.splitlines() if "Warning: artifact" in line]
    assert len(warnings) == 2
    assert "'api_key'" in warnings[0] and "name suggests a credential" in warnings[0]
    assert "'note'" in warnings[1] and "AWS access key id" in warnings[1]
    assert all("Don't store credentials" in w for w in warnings)
    assert query(db_path, "select status from runs") == [("succeeded",)]
    stored = query(
        db_path,
        "select log_text(l.task_id, l.stream) from log l join task t on t.id = l.task_id "
        "where l.stream = 'stderr' and t.step = 'start'",
    )[0][0]
    assert "api_key" in stored  # the warning is kept with the task's stderr too


def test_a_step_reads_another_flows_runs_from_the_same_ledger(db_path, tmp_path, monkeypatch):
    from .helpers import EXAMPLES

    monkeypatch.delenv("LEDGERFLOW_DB")  # only --db says where: the client must follow it
    other = tmp_path / "elsewhere.db"
    run_flow(EXAMPLES / "artifact_example.py", db=other)
    run_flow(ENGINE / "reader_flow.py", db=other)
    assert art(other, "ReaderFlow", "end", "stats") == 0.95


def test_common_artifact_names_that_are_not_flowspec_attributes_are_allowed(db_path):
    run_flow(ENGINE / "common_names.py", db=db_path)
    assert art(db_path, "TagsArtFlow", "end", "tags") == ["a", "b"]
    assert art(db_path, "TagsArtFlow", "end", "steps") == 3
    assert art(db_path, "TagsArtFlow", "end", "run") == "r"


def test_a_step_calling_sys_exit_fails_its_task_not_the_runtime(db_path):
    proc = run_flow(FLOWS / "bad" / "exits.py", db=db_path, check=1)
    assert "SystemExit: 3" in proc.stderr
    assert query(db_path, "select status, exception_type from tasks") == [
        ("failed", "builtins.SystemExit")]  # fmt: skip
    assert query(db_path, "select status from runs") == [("failed",)]


def test_callable_parameter_defaults_get_a_parameter_context(db_path):
    proc = run_flow(ENGINE / "deploy_time.py", db=db_path, top=())
    assert "hi who 5" in proc.stdout
    assert art(db_path, "DeployFlow", "start", "who") == "hi who"


def test_current_knows_parameters_and_project(db_path):
    proc = run_flow(ENGINE / "project_flow.py", db=db_path, top=())
    assert "['alpha'] demo user.tester demo.user.tester.ProjFlow False" in proc.stdout


def test_a_big_value_then_a_foreach_under_every_executor(db_path, executor, tmp_path):
    # The start step's commit is checkpointed in a background thread; process workers fork
    # after it. The run must neither hang nor lose anything, and the .db file alone must hold
    # the run once it is over.
    import shutil

    run("big_then_foreach", db_path, executor)
    # (The -wal file stays, fully copied into the .db: see docs/reliability.md.)
    copy = tmp_path / "copy.db"
    shutil.copyfile(db_path, copy)
    assert query(copy, "select count(*) from runs where status = 'succeeded'") == [(1,)]
    assert query(copy, "select sum(length(data)) > 12000000 from blob_chunk") == [(1,)]
    assert art(db_path, "BigThenForeachFlow", "join", "all_ok") is True
