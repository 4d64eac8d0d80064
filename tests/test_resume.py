"""resume: clone what succeeded upstream, run the rest again."""

from __future__ import annotations

import pytest

from .helpers import FLOWS, load_artifact, query, run_flow

FLOW = FLOWS / "control" / "resumable.py"


def runs(db):
    return query(db, "select run_id, status, origin_run_id from runs order by created_at")


def tasks(db, run_id):
    return query(
        db,
        "select step, task_id, t.status, origin_pathspec from task t "
        "join run r on r.id = t.run_id where r.run_id = ? "
        "order by cast(task_id as int)",
        (run_id,),
    )


def fail_at(where, monkeypatch):
    if where:
        monkeypatch.setenv("FAIL_AT", where)
    else:
        monkeypatch.delenv("FAIL_AT", raising=False)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_resume_after_a_failed_foreach_item(db_path, monkeypatch, executor):
    fail_at("item2", monkeypatch)
    run_flow(FLOW, "--scale", "5", "--tag", "mine", db=db_path, check=1)
    fail_at(None, monkeypatch)
    run_flow(FLOW, "--executor", executor, db=db_path, command="resume")
    (origin, _, _), (resumed, status, origin_ref) = runs(db_path)
    assert status == "succeeded" and origin_ref == origin
    by_task = {t[1]: t for t in tasks(db_path, resumed)}
    assert by_task["1"][3] == f"ResumableFlow/{origin}/start/1"  # start cloned
    cloned = {t[1] for t in tasks(db_path, resumed) if t[3]}
    assert cloned == {"1", "2", "4"}  # the failed item re-ran, its siblings were cloned
    assert load_artifact(db_path, resumed, "join", "values") == [5, 10, 15]  # scale carried over
    assert load_artifact(db_path, resumed, "work", "ran_in", index=0) == origin
    assert load_artifact(db_path, resumed, "work", "ran_in", index=1) == resumed
    assert load_artifact(db_path, resumed, "after", "origin_in_after") == origin
    # user tags do not carry over; system tags do
    tags = query(db_path, "select tags from runs where run_id = ?", (resumed,))[0][0]
    assert "mine" not in tags and "runtime:dev" in tags
    # cloning wrote no new blobs for the cloned tasks
    shas = query(
        db_path,
        "select count(*) from all_artifacts a where run_id = ? and step='work' "
        "and task_id in ('2','4') and sha not in (select sha from all_artifacts "
        "where run_id = ?)",
        (resumed, origin),
    )
    assert shas == [(0,)]


def test_resume_after_a_failure_past_a_join(db_path, monkeypatch):
    fail_at("after", monkeypatch)
    run_flow(FLOW, db=db_path, check=1)
    fail_at(None, monkeypatch)
    run_flow(FLOW, db=db_path, command="resume")
    resumed = runs(db_path)[-1][0]
    states = {(t[0], t[1]): bool(t[3]) for t in tasks(db_path, resumed)}
    assert all(states[k] for k in states if k[0] in ("start", "work", "join"))
    assert not states[("after", "6")] and not states[("end", "7")]
    assert load_artifact(db_path, resumed, "after", "total") == 60


def test_resume_of_a_named_succeeded_step_reruns_it_and_downstream(db_path, monkeypatch):
    fail_at(None, monkeypatch)
    run_flow(FLOW, db=db_path)
    origin = runs(db_path)[0][0]
    run_flow(FLOW, "--origin-run-id", origin, "work", db=db_path, command="resume")
    resumed = runs(db_path)[-1][0]
    cloned = [t[0] for t in tasks(db_path, resumed) if t[3]]
    assert cloned == ["start"]
    assert load_artifact(db_path, resumed, "join", "ran_in") == resumed


def test_resume_errors_are_one_clear_line(db_path, monkeypatch):
    proc = run_flow(FLOW, db=db_path, command="resume", check=1)
    assert "no run of ResumableFlow" in proc.stderr and "Traceback" not in proc.stderr
    fail_at(None, monkeypatch)
    run_flow(FLOW, db=db_path)
    proc = run_flow(FLOW, "nosuchstep", db=db_path, command="resume", check=1)
    assert "has no step 'nosuchstep'" in proc.stderr
    proc = run_flow(FLOW, "--origin-run-id", "123", db=db_path, command="resume", check=1)
    assert "ResumableFlow/123 does not exist" in proc.stderr
