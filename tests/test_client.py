"""The Client API (ledgerflow.client) over real runs made through the flow CLI.

The module fixture runs the flows in tests/flows/client/ once into one ledger; tests
that write (tags) or change file permissions work on copies of it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ledgerflow import codec, reads
from ledgerflow.client import (
    DataArtifact,
    Flow,
    Metaflow,
    MetaflowCode,
    MetaflowData,
    MetaflowExceptionWrapper,
    MetaflowTaggingError,
    Run,
    Step,
    Task,
    default_metadata,
    default_namespace,
    get_metadata,
    get_namespace,
    metadata,
    namespace,
    use_ledger,
)
from ledgerflow.current import get_username
from ledgerflow.exceptions import (
    LedgerError,
    LedgerflowError,
    LedgerReadOnlyError,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
)
from ledgerflow.ledger import Ledger

FLOWS = Path(__file__).parent / "flows" / "client"
ME = "client-test-me"  # the user of the runs in the default namespace
OTHER_USER = "client-test-other-user"


def _start(
    db: Path,
    flow: str,
    name: str,
    *args: str,
    user: str = ME,
    command: str = "run",
    env: dict[str, str] | None = None,
):
    """Start `python FLOW --db DB --quiet COMMAND --run-id-file ... ARGS` as `user`."""
    id_file = db.parent / f"{name}.runid"
    cmd = [
        sys.executable,
        str(FLOWS / flow),
        "--db",
        str(db),
        "--quiet",
        command,
        "--run-id-file",
        str(id_file),
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "METAFLOW_USER": user, **(env or {})},
    )
    return proc, id_file


def _finish(started, expect_ok: bool = True) -> str:
    proc, id_file = started
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode == 0) == expect_ok, (out, err)
    return id_file.read_text()


def _copy_ledger(src: Path, dst: Path) -> Path:
    """A consistent copy of a (WAL) ledger."""
    s, d = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        s.close()
        d.close()
    return dst


@pytest.fixture(scope="module")
def lf(tmp_path_factory):
    """Runs, in one ledger: LinearFlow ok, ok (tagged), failed; LinearFlow by another user;
    ForeachFlow; ControlFlow failed, then resumed."""
    folder = tmp_path_factory.mktemp("client")
    db = folder / "ledgerflow.db"
    first = _finish(_start(db, "linear_flow.py", "first"))
    tagged = _finish(
        _start(db, "linear_flow.py", "tagged", "--tag", "mytag", "--tag", "other", "--alpha", "5")
    )
    failed = _finish(_start(db, "linear_flow.py", "failed", "--fail", "true"), expect_ok=False)
    others = _start(db, "linear_flow.py", "other", user=OTHER_USER)
    foreach = _start(db, "foreach_flow.py", "foreach")
    control = _start(db, "control_flow.py", "control", env={"CLIENT_TEST_FAIL": "1"})
    control_id = _finish(control, expect_ok=False)
    resumed = _start(
        db, "control_flow.py", "resumed", "--origin-run-id", control_id, command="resume"
    )
    return SimpleNamespace(
        folder=folder,
        db=db,
        first=f"LinearFlow/{first}",
        tagged=f"LinearFlow/{tagged}",
        failed=f"LinearFlow/{failed}",
        other=f"LinearFlow/{_finish(others)}",
        foreach=f"ForeachFlow/{_finish(foreach)}",
        control=f"ControlFlow/{control_id}",
        resumed=f"ControlFlow/{_finish(resumed)}",
    )


@pytest.fixture(autouse=True)
def fresh_settings(lf, monkeypatch):
    monkeypatch.setenv("METAFLOW_USER", ME)
    default_namespace()
    use_ledger(lf.db)
    yield
    reads.trace = None
    default_namespace()
    default_metadata()


def sql(db: Path, query: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def run_pk(db: Path, pathspec: str) -> int:
    flow, run_id = pathspec.split("/")
    return sql(
        db,
        "select r.id from run r join flow f on f.id = r.flow_id where f.name = ? and r.run_id = ?",
        (flow, run_id),
    )[0][0]


# -- Metaflow, Flow ------------------------------------------------------------------------


def test_metaflow_lists_flows_in_namespace(lf):
    names = ["ControlFlow", "ForeachFlow", "LinearFlow"]
    assert [f.id for f in Metaflow().flows] == names
    assert [f.id for f in Metaflow()] == names
    assert Metaflow()["LinearFlow"] == Flow("LinearFlow")
    assert str(Metaflow()) == "Metaflow()"
    namespace("user:nobody-here")
    assert Metaflow().flows == []
    namespace(f"user:{OTHER_USER}")
    assert [f.id for f in Metaflow()] == ["LinearFlow"]


def test_flow_properties_and_runs(lf):
    flow = Flow("LinearFlow")
    assert repr(flow) == "Flow('LinearFlow')" == str(flow)
    assert flow.id == flow.pathspec == "LinearFlow"
    assert flow.path_components == ["LinearFlow"]
    assert flow.parent is None and flow.tags == frozenset()
    assert isinstance(flow.created_at, datetime.datetime)
    # Newest first, only runs in the namespace (not the other user's).
    runs = list(flow)
    assert [r.pathspec for r in runs] == [lf.failed, lf.tagged, lf.first]
    assert [r.pathspec for r in flow.runs()] == [lf.failed, lf.tagged, lf.first]
    assert flow.latest_run.pathspec == lf.failed
    assert flow.latest_successful_run.pathspec == lf.tagged
    assert [r.pathspec for r in flow.runs("mytag")] == [lf.tagged]
    assert [r.pathspec for r in flow.runs("mytag", "other")] == [lf.tagged]
    assert list(flow.runs("mytag", "missing")) == []
    assert [r.pathspec for r in flow.runs(f"user:{ME}", "runtime:dev")] == [
        lf.failed,
        lf.tagged,
        lf.first,
    ]
    run_id = lf.first.split("/")[1]
    assert run_id in flow and "nope" not in flow
    assert flow[run_id] == Run(lf.first)
    assert flow[run_id].parent is flow


# -- Run -----------------------------------------------------------------------------------


def test_run_properties(lf):
    run = Run(lf.tagged)
    flow_name, run_id = lf.tagged.split("/")
    assert repr(run) == f"Run('{lf.tagged}')"
    assert run.id == run_id and run.pathspec == lf.tagged
    assert run.path_components == [flow_name, run_id]
    assert run.parent == Flow("LinearFlow")
    assert run.successful is True and run.finished is True
    assert run.status == "succeeded" and run.origin_run_id is None and run.origin_pathspec is None
    assert run.created_at <= run.finished_at
    assert abs(run.created_at - datetime.datetime.now()) < datetime.timedelta(minutes=10)
    assert run.finished_at == run.end_task.finished_at
    assert [s.id for s in run] == ["end", "middle", "start"]  # newest first, as Metaflow
    assert [s.id for s in run.steps()] == ["end", "middle", "start"]
    assert "start" in run and "nope" not in run
    assert run.end_task == Task(f"{lf.tagged}/end/3")
    assert run.data.result == 10 and run.data.x == 2
    me = ME
    assert get_username() == me
    assert run.user_tags == {"mytag", "other"}
    assert f"user:{me}" in run.system_tags and "runtime:dev" in run.system_tags
    assert any(t.startswith("python_version:") for t in run.system_tags)
    assert run.tags == run.user_tags | run.system_tags
    code = run.code
    assert isinstance(code, MetaflowCode)
    assert code.script_name == "linear_flow.py"
    assert code.flowspec == (FLOWS / "linear_flow.py").read_text()
    assert str(code) == "<MetaflowCode: linear_flow.py>"
    html = run._repr_html_()
    assert html.startswith("<table>") and "succeeded" in html and "mytag" in html


def test_equality_hash_and_pickle(lf):
    a, b = Run(lf.first), Run(lf.first)
    assert a == b and hash(a) == hash(b) and a is not b
    assert len({a, b, Run(lf.tagged)}) == 2
    assert Task(f"{lf.first}/start/1") != Step(f"{lf.first}/start")
    task = Task(f"{lf.first}/start/1")
    again = pickle.loads(pickle.dumps(task))
    assert again == task and again.data.x == 1


def test_failed_run(lf):
    run = Run(lf.failed)
    assert run.successful is False and run.finished is False
    assert run.finished_at is None and run.end_task is None and run.data is None
    assert run.status == "failed"
    assert [s.id for s in run] == ["middle", "start"]
    task = run["middle"].task
    assert task.successful is False and task.finished is False and task.status == "failed"
    exc = task.exception
    assert isinstance(exc, MetaflowExceptionWrapper)
    assert exc.type == "builtins.ValueError" and exc.exception == "boom 42"
    assert 'raise ValueError("boom 42")' in exc.stacktrace and "boom 42" in str(exc)
    assert "ValueError: boom 42" in task.stderr
    assert task.metadata_dict["attempt_ok"] == "False"
    assert Run(lf.first)["middle"].task.exception is None


# -- Step ----------------------------------------------------------------------------------


def test_step_properties(lf):
    step = Step(f"{lf.first}/middle")
    assert repr(step) == f"Step('{lf.first}/middle')"
    assert step.id == "middle" and step.parent == Run(lf.first)
    assert step.path_components == [*lf.first.split("/"), "middle"]
    assert step.task == Task(f"{lf.first}/middle/2")
    assert list(step.tasks()) == list(step) == [step.task]
    assert "2" in step and "9" not in step
    assert step["2"] == step.task
    assert step.created_at == step.task.created_at
    assert step.finished_at == step.task.finished_at
    assert step.tags == Run(lf.first).tags
    assert Run(lf.first)["middle"] == step
    assert [s.id for s in step.parent_steps] == ["start"]
    assert [s.id for s in step.child_steps] == ["end"]


# -- Task ----------------------------------------------------------------------------------


def test_task_properties(lf):
    task = Task(f"{lf.first}/start/1")
    assert repr(task) == f"Task('{lf.first}/start/1')"
    assert task.id == "1" and task.pathspec == f"{lf.first}/start/1"
    assert task.parent == Step(f"{lf.first}/start")
    assert task.successful and task.finished and task.status == "succeeded"
    assert task.exception is None and task.index is None and task.foreach_stack == []
    assert task.current_attempt == 0
    assert task.stdout == "hello from start\n"
    assert task.stderr == "warning from start\n"
    assert task.stdout_size == len("hello from start\n")
    assert task.finished_at >= task.created_at
    assert task.runtime_name == "dev"
    assert task.code.script_name == "linear_flow.py"
    assert task.data.x == 1 and task.data.payload == {"numbers": [1, 2, 3]}
    assert task.data.when == datetime.date(2020, 1, 2)
    assert task.data.alpha == 3 and task.data.name == "LinearFlow"
    assert isinstance(task.data, MetaflowData) and "x" in task.data and "nope" not in task.data
    with pytest.raises(AttributeError, match="no artifact 'nope'"):
        task.data.nope
    names = ["alpha", "fail", "name", "payload", "when", "x"]
    assert [a.id for a in task] == names
    assert [a.id for a in task.artifacts] == names
    assert len(task.artifacts) == len(names)
    assert task.artifacts.x == task["x"] == DataArtifact(f"{lf.first}/start/1/x")
    assert "x" in task and "_graph_info" in task and "nope" not in task
    meta = task.metadata_dict
    assert meta["attempt"] == "0" and meta["user"] == ME
    assert meta["script-name"] == "linear_flow.py" and meta["runtime"] == "dev"
    assert meta["python_version"] and meta["ledger"] == str(lf.db)
    assert {m.name for m in task.metadata} == set(meta)
    html = task._repr_html_()
    assert html.startswith("<table>") and "payload" in html


def test_private_artifacts_by_name_only(lf):
    task = Task(f"{lf.first}/start/1")
    info = task["_graph_info"].data
    assert info["start_step"] == "start" and "middle" in info["steps"]
    assert task["_success"].data is True and task["_foreach_stack"].data == []
    assert "_success" in task
    internal = {"_graph_info", "_success", "_task_ok", "_transition", "_foreach_stack"}
    public = {a.id for a in task} | set(task.artifacts._fields) | set(dir(task.data))
    assert not internal & public
    with pytest.raises(AttributeError):
        task.data._graph_info


def test_inherited_artifacts_are_visible(lf):
    end = Task(f"{lf.first}/end/3")
    assert end.data.payload == {"numbers": [1, 2, 3]}  # set in start, passed on
    assert end["payload"].inherited and not end["result"].inherited
    assert end["payload"].sha == Task(f"{lf.first}/start/1")["payload"].sha


def test_linear_lineage(lf):
    middle = Task(f"{lf.first}/middle/2")
    assert list(middle.parent_tasks) == [Task(f"{lf.first}/start/1")]
    assert list(middle.child_tasks) == [Task(f"{lf.first}/end/3")]
    assert list(middle.parent_task_pathspecs) == [f"{lf.first}/start/1"]
    assert list(Task(f"{lf.first}/start/1").parent_tasks) == []
    assert list(Task(f"{lf.first}/end/3").child_tasks) == []


# -- DataArtifact --------------------------------------------------------------------------


def test_data_artifact(lf):
    pathspec = f"{lf.first}/start/1/payload"
    art = DataArtifact(pathspec)
    assert repr(art) == f"DataArtifact('{pathspec}')"
    assert art.id == "payload" and art.pathspec == pathspec
    assert art.parent == Task(f"{lf.first}/start/1")
    sha, size, encoding, type_ = sql(
        lf.db,
        "select a.sha, a.size, a.encoding, a.type from artifact a join task t on t.id = a.task_id"
        " where t.run_id = ? and t.step = 'start' and a.name = 'payload'",
        (run_pk(lf.db, lf.first),),
    )[0]
    assert art.sha == sha and art.size == size
    assert art.encoding == encoding == "json" and art.type == type_ == "builtins.dict"
    assert art.created_at == art.finished_at == art.parent.finished_at
    assert art.tags == Run(lf.first).tags
    assert DataArtifact(f"{lf.first}/start/1/when").encoding == "pickle"
    # Each .data is a fresh object: mutating one does not touch the next.
    value = art.data
    value["numbers"].append(99)
    assert art.data == {"numbers": [1, 2, 3]}
    assert art.data is not art.data
    data = Task(f"{lf.first}/start/1").data
    data.payload["numbers"].clear()
    assert data.payload == {"numbers": [1, 2, 3]}


# -- foreach and branches ------------------------------------------------------------------


def test_foreach_tasks_and_index(lf):
    run = Run(lf.foreach)
    body = run["body"]
    tasks = list(body)
    assert len(tasks) == 3
    by_index = {t.index: t for t in tasks}
    assert sorted(by_index) == [0, 1, 2]
    items = run["start"].task.data.items
    assert items == [30, 10, 20]
    for index, task in by_index.items():
        assert task.data.item == items[index]
        assert task.data.sq == items[index] ** 2
        assert task.stdout == f"item {items[index]}\n"
        assert task.foreach_stack[-1].index == index and task.foreach_stack[-1].var == "items"
        assert task.metadata_dict["foreach-execution-path"].endswith(f":{index}")
    # Newest first: the foreach tasks are listed in reverse order of creation.
    assert [t.id for t in tasks] == sorted((t.id for t in tasks), key=int, reverse=True)
    assert run["gather"].task.index is None
    assert run.data.total == 30 * 30 + 10 * 10 + 20 * 20 + 1 + 2
    assert run.data.results == [900, 100, 400]


def test_foreach_and_branch_lineage(lf):
    run = Run(lf.foreach)
    start, gather = run["start"].task, run["gather"].task
    body_ids = sorted((t.id for t in run["body"]), key=int)
    assert [t.id for t in start.child_tasks] == body_ids
    assert [t.id for t in gather.parent_tasks] == body_ids
    for task in run["body"]:
        assert list(task.parent_tasks) == [start]
        assert list(task.child_tasks) == [gather]
    fork, meet = run["fork"].task, run["meet"].task
    assert [t.parent.id for t in fork.child_tasks] == ["left", "right"]
    assert [t.parent.id for t in meet.parent_tasks] == ["left", "right"]
    assert list(meet.child_tasks) == [run["end"].task]
    assert meet.data.sides == ["left", "right"]
    assert sorted(s.id for s in run["fork"].child_steps) == ["left", "right"]
    assert sorted(s.id for s in run["meet"].parent_steps) == ["left", "right"]


# -- retries, @catch, resume -------------------------------------------------------------


def test_retried_task_shows_its_last_attempt(lf):
    task = Task(f"{lf.control}/flaky/2")
    assert task.current_attempt == 1 and task.successful and task.exception is None
    assert task.stdout == "attempt 1\n" and task.metadata_dict["attempt"] == "1"
    assert list(Step(f"{lf.control}/flaky")) == [task]
    first = Task(f"{lf.control}/flaky/2", attempt=0)
    assert repr(first) == f"Task('{lf.control}/flaky/2', attempt=0)"
    assert first.current_attempt == 0 and first.status == "failed" and not first.finished
    assert first.exception.type == "builtins.ConnectionError"
    assert first.stdout == "attempt 0\n"
    assert first.created_at == task.created_at  # the task began with its first attempt
    assert first.finished_at < task.finished_at
    art = DataArtifact(f"{lf.control}/flaky/2/base", attempt=0)
    assert art.data == 7 and repr(art).endswith("attempt=0)")
    assert [a.id for a in first] == ["base", "name"]
    assert first.parent[task.id] == task and Task(task.pathspec, attempt=1) != task


def test_caught_task(lf):
    task = Task(f"{lf.control}/risky/3")
    assert task.status == "caught" and task.finished and not task.successful
    assert task.exception.type == "builtins.KeyError"
    assert "missing thing" in task.exception.exception
    assert task.data.err.type == "builtins.KeyError"  # @catch's var
    assert Run(lf.control)["fragile"].task.exception.exception == "fragile failed"


def test_resumed_run_origin(lf):
    origin_id = lf.control.split("/")[1]
    run = Run(lf.resumed)
    assert run.origin_run_id == origin_id and run.origin_pathspec == lf.control
    assert Run(lf.control).origin_run_id is None and Run(lf.control).origin_pathspec is None
    assert run.successful and run.data.done is True
    start = run["start"].task
    assert start.origin_pathspec == f"{lf.control}/start/1"
    assert start.metadata_dict["origin-run-id"] == origin_id
    assert start.metadata_dict["origin-task-id"] == "1"
    assert start.data.base == 7
    assert run["fragile"].task.origin_pathspec is None  # ran again
    assert run["start"].origin_pathspec == f"{lf.control}/start"
    assert Flow("ControlFlow").latest_successful_run == run


# -- namespaces ----------------------------------------------------------------------------


def test_namespaces(lf):
    me = get_username()
    assert me == ME
    assert get_namespace() == default_namespace() == f"user:{me}"
    with pytest.raises(MetaflowNamespaceMismatch, match=re.escape(lf.other)):
        Run(lf.other)
    with pytest.raises(MetaflowNamespaceMismatch):
        Task(f"{lf.other}/start/1")
    with pytest.raises(MetaflowNamespaceMismatch):
        Flow("LinearFlow")[lf.other.split("/")[1]]
    assert lf.other not in [r.pathspec for r in Flow("LinearFlow")]
    assert namespace(None) is None and get_namespace() is None
    every = [r.pathspec for r in Flow("LinearFlow")]
    assert every[0] == lf.other and len(every) == 4
    assert Run(lf.other).system_tags >= {f"user:{OTHER_USER}"}
    assert namespace(f"user:{OTHER_USER}") == f"user:{OTHER_USER}"
    assert [r.pathspec for r in Flow("LinearFlow")] == [lf.other]
    assert Flow("LinearFlow").latest_run.pathspec == lf.other
    with pytest.raises(MetaflowNamespaceMismatch):
        Run(lf.first)
    with pytest.raises(MetaflowNamespaceMismatch, match="ForeachFlow"):
        Flow("ForeachFlow")  # no run of it in this namespace
    # An object keeps the namespace it was made in.
    namespace(None)
    flow = Flow("LinearFlow")
    default_namespace()
    assert len(list(flow)) == 4 and flow[lf.other.split("/")[1]].id
    assert Run(lf.first).is_in_namespace()
    assert not Flow("LinearFlow", _namespace_check=False)[lf.other.split("/")[1]].is_in_namespace()


# -- tags ----------------------------------------------------------------------------------


def test_tag_mutation(lf, tmp_path):
    db = _copy_ledger(lf.db, tmp_path / "tags.db")
    run = Run(lf.first, ledger=db)
    system = run.system_tags
    run.add_tag("alpha")
    run.add_tags(["beta", "gamma"])
    assert run.user_tags == {"alpha", "beta", "gamma"}
    run.remove_tag("beta")
    run.remove_tags(["gamma", "not-there"])
    assert run.user_tags == {"alpha"}
    run.replace_tag("alpha", "delta")
    run.replace_tags(["delta"], ["x1", "x2"])
    assert run.user_tags == {"x1", "x2"} and run.system_tags == system
    assert run.tags == {"x1", "x2"} | system
    # Stored, as user tags, and seen by new objects and by runs(*tags).
    assert Run(lf.first, ledger=db).user_tags == {"x1", "x2"}
    rows = sql(
        db,
        "select tag, system from tag where run_id = ? and system = 0 order by tag",
        (run_pk(db, lf.first),),
    )
    assert rows == [("x1", 0), ("x2", 0)]
    assert [r.pathspec for r in Flow("LinearFlow", ledger=db).runs("x1")] == [lf.first]
    # Adding a tag that is already a system tag leaves it a system tag.
    sys_tag = f"user:{ME}"
    run.add_tag(sys_tag)
    assert sys_tag in run.system_tags and sys_tag not in run.user_tags
    # System tags cannot be removed.
    with pytest.raises(MetaflowTaggingError, match="system tag") as info:
        run.remove_tag(sys_tag)
    assert isinstance(info.value, LedgerflowError)
    with pytest.raises(MetaflowTaggingError):
        run.replace_tag(sys_tag, "new")
    assert "new" not in Run(lf.first, ledger=db).tags  # the failed replace changed nothing
    # Validation as Metaflow.
    for bad in ["", "x" * 501, 42, None]:
        with pytest.raises(MetaflowTaggingError):
            run.add_tag(bad)
    run.add_tag("y" * 500)
    with pytest.raises(MetaflowTaggingError, match="string"):
        run.replace_tags([], "not-a-list")
    with pytest.raises(MetaflowTaggingError, match="at least one"):
        run.replace_tags([], [])
    assert sql(db, "select count(*) from tag where tag = ''")[0][0] == 0


def test_tag_limit(lf, tmp_path):
    db = _copy_ledger(lf.db, tmp_path / "many.db")
    run = Run(lf.first, ledger=db)
    run.add_tags([f"t{i}" for i in range(50)])
    with pytest.raises(MetaflowTaggingError, match="50"):
        run.add_tag("one-too-many")
    run.replace_tag("t0", "swap")  # same size: allowed
    assert len(run.user_tags) == 50


# -- ledgers: choosing, read-only, live runs -----------------------------------------------


def test_choosing_the_ledger(lf, tmp_path, monkeypatch):
    copy = _copy_ledger(lf.db, tmp_path / "copy.db")
    monkeypatch.setenv("LEDGERFLOW_DB", str(copy))
    assert default_metadata() == f"ledger@{copy}"  # the default follows $LEDGERFLOW_DB
    assert Run(lf.first)._ledger.path == copy
    use_ledger(lf.db)
    assert get_metadata() == f"ledger@{lf.db}"
    assert metadata(f"ledger@{copy}") == f"ledger@{copy}" == get_metadata()
    assert Run(lf.first)._ledger.path == copy
    assert metadata(f"local@{lf.folder}") == f"ledger@{lf.db}"  # a folder: its ledgerflow.db
    assert metadata(str(copy)) == f"ledger@{copy}"
    assert use_ledger(lf.db) == f"ledger@{lf.db}"
    with pytest.raises(LedgerflowError, match="ledger files only"):
        metadata("service@https://example.invalid")
    # ledger= per object, as a path or a Ledger; children keep it.
    run = Run(lf.first, ledger=copy)
    run2 = Run(lf.first, ledger=Ledger.open(copy))
    assert run._ledger.path == run2._ledger.path == copy
    use_ledger(tmp_path / "elsewhere.db")
    task = run["start"].task
    assert task._ledger is run._ledger and task["x"].data == 1
    assert run != Run(lf.first, ledger=lf.db)  # same pathspec, another ledger
    # A missing ledger is an error, and is not created.
    with pytest.raises(LedgerError, match="no ledger at"):
        Flow("LinearFlow")
    assert not (tmp_path / "elsewhere.db").exists()


def test_readonly_ledger(lf, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = _copy_ledger(lf.db, folder / "ledgerflow.db")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        as_root = os.geteuid() == 0  # root can write anyway: ask for read-only explicitly
        use_ledger(db, readonly=True if as_root else None)
        from ledgerflow import trust

        trust(db)  # a copy at another path is not this user's own ledger: its pickles need it
        run = Run(lf.first)
        assert run._ledger.readonly
        assert [s.id for s in run] == ["end", "middle", "start"]
        assert run.data.result == 6 and run["start"].task.data.when == datetime.date(2020, 1, 2)
        assert [r.pathspec for r in Flow("LinearFlow")][-1] == lf.first
        assert run["start"].task.stdout == "hello from start\n"
        with pytest.raises(LedgerReadOnlyError):
            run.add_tag("nope")
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def _wait_for(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def _start_wait_flow(tmp_path, name):
    db = tmp_path / "live.db"
    go = tmp_path / f"{name}.go"
    started = _start(db, "wait_flow.py", name, "--go", str(go))
    run_id = _wait_for(lambda: started[1].exists() and started[1].read_text())
    pathspec = f"WaitFlow/{run_id}"
    use_ledger(db)
    # a task is in the ledger from the moment it starts: `hold` is there, running
    _wait_for(lambda: "hold" in Run(pathspec))
    return started, go, pathspec


def test_reads_while_a_run_writes(lf, tmp_path):
    started, go, pathspec = _start_wait_flow(tmp_path, "live")
    try:
        run = Run(pathspec)
        assert run.status == "running"
        assert not run.finished and not run.successful and run.end_task is None
        assert run.finished_at is None and run.data is None
        assert sorted(s.id for s in run) == ["hold", "start"]
        assert run["start"].task.data.started is True and run["start"].task.finished
        hold = run["hold"].task
        assert not hold.finished and not hold.successful and hold.finished_at is None
        assert Flow("WaitFlow").latest_run == run and Flow("WaitFlow").latest_successful_run is None
    finally:
        go.touch()
        _finish(started)
    run = Run(pathspec)
    assert run.status == "succeeded" and run.finished and run.data.done is True


def test_crashed_run_reads_as_not_finished(lf, tmp_path):
    started, go, pathspec = _start_wait_flow(tmp_path, "crash")
    proc = started[0]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    db = tmp_path / "live.db"
    run = Run(pathspec)
    assert run.status == "crashed" and not run.finished and not run.successful
    assert run.finished_at is None and run["start"].task.successful
    # Reading did not change the ledger.
    assert sql(db, "select status from run where id = ?", (run_pk(db, pathspec),)) == [("running",)]


# -- errors --------------------------------------------------------------------------------


def test_not_found_messages(lf):
    cases = [
        (
            lambda: Flow("NoSuchFlow"),
            "NoSuchFlow",
            "flows there: ControlFlow, ForeachFlow, LinearFlow",
        ),
        (lambda: Run("LinearFlow/123"), "LinearFlow/123", "has no run '123'"),
        (lambda: Run("NoSuchFlow/123"), "NoSuchFlow/123", "no flow named 'NoSuchFlow'"),
        (lambda: Step(f"{lf.first}/nope"), f"{lf.first}/nope", "its steps: end, middle, start"),
        (lambda: Task(f"{lf.first}/start/9"), f"{lf.first}/start/9", "its tasks: 1"),
        (lambda: Task(f"{lf.first}/nope/1"), f"{lf.first}/nope/1", "has no step 'nope'"),
        (lambda: Task(f"{lf.first}/start/1", attempt=3), f"{lf.first}/start/1", "has no attempt 3"),
        (
            lambda: DataArtifact(f"{lf.first}/start/1/nope"),
            f"{lf.first}/start/1/nope",
            "its artifacts: alpha, fail, name, payload, when, x",
        ),
        (lambda: Run(lf.first)["nope"], f"{lf.first}/nope", "no step 'nope'"),
        (lambda: Step(f"{lf.first}/start")["7"], f"{lf.first}/start/7", "no task '7'"),
        (
            lambda: Task(f"{lf.first}/start/1")["nope"],
            f"{lf.first}/start/1/nope",
            "no artifact 'nope'",
        ),
        (lambda: Flow("LinearFlow")["999"], "LinearFlow/999", "no run '999'"),
    ]
    for make, pathspec, detail in cases:
        with pytest.raises(MetaflowNotFound) as info:
            make()
        message = str(info.value)
        assert message.startswith(f"{pathspec} does not exist in ledger {lf.db}; "), message
        assert detail in message, message
        assert isinstance(info.value, KeyError)
    assert Task(f"{lf.first}/start/1", attempt=0).current_attempt == 0
    assert repr(Task(f"{lf.first}/start/1", attempt=0)) == f"Task('{lf.first}/start/1', attempt=0)"
    with pytest.raises(MetaflowNotFound, match="Task or DataArtifact"):
        Run(lf.first, attempt=0)


def test_invalid_pathspecs(lf):
    cases = [
        (Flow, "A/B", "Flow('FlowName')"),
        (Flow, "", "Flow('FlowName')"),
        (Run, "LinearFlow", "Run('FlowName/RunID')"),
        (Run, "LinearFlow/", "Run('FlowName/RunID')"),
        (Step, "A/1/s/x", "Step('FlowName/RunID/StepName')"),
        (Task, "A/1/start", "Task('FlowName/RunID/StepName/TaskID')"),
        (Task, "A//start/1", "Task('FlowName/RunID/StepName/TaskID')"),
        (DataArtifact, "A/1/s/1", "DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')"),
        (Task, None, "Task('FlowName/RunID/StepName/TaskID')"),
    ]
    for cls, pathspec, form in cases:
        with pytest.raises(MetaflowInvalidPathspec) as info:
            cls(pathspec)
        assert form in str(info.value) and isinstance(info.value, ValueError)


# -- laziness and indexes ------------------------------------------------------------------


def test_navigation_decodes_nothing_until_data(lf, monkeypatch):
    calls = []
    real_decode = codec.decode
    monkeypatch.setattr(codec, "decode", lambda *a: calls.append(a) or real_decode(*a))
    run = Run(lf.foreach)
    for step in run:
        for task in step:
            list(task)
            task.artifacts
            task.data
            task.index, task.successful, task.finished_at, task.metadata_dict
            list(task.parent_tasks)
    Flow("ForeachFlow").latest_successful_run.end_task
    assert calls == []
    assert run["end"].task.data.total > 0
    assert len(calls) == 1
    run["start"].task["items"].data
    assert len(calls) == 2


FORBIDDEN_SCANS = re.compile(
    r"^SCAN (run|task|artifact|blob|blob_chunk|tag|log|task_parent|[rtagep]\b)"
)


def _plans(db: Path, statements: list[tuple[str, tuple]]) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[3] for s, p in statements for row in conn.execute("explain query plan " + s, p)]
    finally:
        conn.close()


def test_point_lookups_use_indexes(lf):
    statements: list[tuple[str, tuple]] = []
    reads.trace = lambda s, p: statements.append((s, p))
    run = Run(lf.foreach)
    step = run["body"]
    task = Task(f"{lf.foreach}/gather/5")
    art = task["results"]
    DataArtifact(f"{lf.foreach}/gather/5/results")
    Step(f"{lf.foreach}/gather")
    Flow("ForeachFlow")
    _ = (
        "sq" in step.task,
        "body" in run,
        run.end_task,
        run.successful,
        task.stdout,
        list(task.parent_tasks),
        list(task.child_tasks),
        task.exception,
        art.sha,
    )
    reads.trace = None
    assert len(statements) > 10
    plans = _plans(lf.db, statements)
    scans = [p for p in plans if FORBIDDEN_SCANS.search(p)]
    assert scans == [], scans
    assert any("USING INDEX" in p or "USING COVERING INDEX" in p for p in plans)
    assert all("SCAN" not in p for p in plans), plans


def test_listings_use_indexes(lf):
    statements: list[tuple[str, tuple]] = []
    reads.trace = lambda s, p: statements.append((s, p))
    flow = Flow("LinearFlow")
    list(flow), list(flow.runs("mytag")), flow.latest_run, flow.latest_successful_run
    run = Run(lf.foreach)
    for step in run:
        for task in step:
            list(task)
    Metaflow().flows
    reads.trace = None
    scans = [p for p in _plans(lf.db, statements) if FORBIDDEN_SCANS.search(p)]
    assert scans == [], scans
