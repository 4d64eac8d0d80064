"""What a task's own process does to cost less, held to what it replaces: the records it
makes field by field equal their structs' own, fork hooks declared idle are left out only
while idle and only by a one-thread fork server, and every task of a step gets exactly its
own input however little it decodes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ledgerflow import codec, forkhooks
from ledgerflow.flowspec import (
    ForeachFrame,
    TaskState,
    Transition,
    new_task_state,
    new_transition,
)
from ledgerflow.records import ArtifactRecord
from ledgerflow.taskspec import (
    _BLOB_FIELDS,
    _RECORD_FIELDS,
    _TRANSITION_FIELDS,
    TaskResult,
    TaskSpec,
    _frames,
    _new_spec,
    new_record,
    new_result,
    spec_from_wire,
    spec_to_wire,
)
from tests.helpers import latest_run_id, load_artifact, run_flow


def _same(made: object, expected: object) -> None:
    """Equal, and the same fields in the same order (a pickle holds them in that order)."""
    assert type(made) is type(expected)
    assert made == expected
    assert list(vars(made)) == list(vars(expected)) == list(type(expected).__struct_fields__)


def _distinct(cls: type) -> list[object]:
    """A distinct value per field of a struct (so a field set from the wrong argument shows)."""
    return [f"{name}-value" for name in cls.__struct_fields__]


def test_records_made_field_by_field_equal_their_structs() -> None:
    values = _distinct(ArtifactRecord)
    _same(new_record(*values), ArtifactRecord(*values))
    _same(new_record("x", "sha", "json", "builtins.int", 1),
          ArtifactRecord("x", "sha", "json", "builtins.int", 1))  # fmt: skip
    values = _distinct(TaskSpec)
    _same(_new_spec(*values), TaskSpec(*values))  # type: ignore[arg-type]


def test_a_result_made_field_by_field_equals_its_struct() -> None:
    values = _distinct(TaskResult)[:7]
    made = new_result(*values)  # type: ignore[arg-type]
    _same(made, TaskResult(*values))  # type: ignore[arg-type]
    other = new_result(*values)  # type: ignore[arg-type]
    assert made.warnings is not other.warnings and made.cards is not other.cards  # fresh lists
    assert made.carried is not other.carried


def test_a_task_state_and_a_transition_made_field_by_field_equal_their_structs() -> None:
    refs = {"a": ArtifactRecord("a", "s", "json", "builtins.int", 1)}
    stack = [ForeachFrame("work", "items", 3, 1, "1")]
    made = new_task_state("work", None, refs, None, stack, frozenset({"p"}), 7, ("json", b"1"))
    _same(made, TaskState("work", None, refs, None, stack, frozenset({"p"}), None, 7, {},
                          ("json", b"1"), False))  # fmt: skip
    assert made.cached_input is not new_task_state("w", None, {}, None, [], frozenset(), 1,
                                                   None).cached_input  # fmt: skip
    _same(new_transition(["join"], 12), Transition(["join"], lineno=12))


def test_a_small_blob_made_field_by_field_equals_the_struct() -> None:
    for compress in (True, False):
        blob = codec._small_blob("json", b"[1, 2]", compress)
        frames = [codec.compress_frame(b"[1, 2]")] if compress else None
        expected = codec.EncodedBlob(blob.sha, "json", 6, len(frames[0]) if frames else 0, 1,
                                     frames, None, [], b"[1, 2]", "")  # fmt: skip
        _same(blob, expected)
        assert blob.sha == codec.sha256(b"[1, 2]")


def test_foreach_frames_read_off_the_wire_are_foreach_frames() -> None:
    frames = _frames([("work", "items", 3, 1, "1"), ("inner", "xs", 2, 0, "a")])
    assert frames == [
        ForeachFrame("work", "items", 3, 1, "1"),
        ForeachFrame("inner", "xs", 2, 0, "a"),
    ]
    assert all(type(f) is ForeachFrame for f in frames)
    assert frames[0].index == 1 and frames[1].value == "a"
    with pytest.raises(ValueError, match="5 fields"):
        _frames([("work", "items", 3, 1)])


def test_a_spec_read_off_the_wire_has_attributes_as_a_constructed_one() -> None:
    """The wire's records and spec are made field by field: attribute reads, replace(),
    pickling and equality behave as for the structs' own."""
    import pickle

    from ledgerflow.structs import replace

    record = ArtifactRecord("x", "s" * 64, "json", "builtins.int", 1, 1, "1", False)
    spec = TaskSpec("f.py", "m", "C", "l.db", "C", "1", 1, "work", "2", inputs=[{"x": record}],
                    foreach_stack=[ForeachFrame("work", "items", 3, 1, "1")],
                    constants={"x": record}, foreach_item=("json", b"1"))  # fmt: skip
    back = spec_from_wire(spec_to_wire(spec))
    assert back == spec
    assert pickle.loads(pickle.dumps(back)) == spec
    assert replace(back.inputs[0]["x"], inherited=True) == replace(record, inherited=True)
    assert back.inputs[0]["x"] is back.constants["x"]  # written once, read as one record


def _registrations(monkeypatch: pytest.MonkeyPatch, idle: dict[str, object]) -> list[str]:
    calls: list[str] = []
    hooks = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    monkeypatch.setattr(forkhooks, "_EARLY", frozenset())
    monkeypatch.setattr(forkhooks, "_PLAN", [])
    monkeypatch.setattr(forkhooks, "_HOOKS", [(lambda n=n: calls.append(f"before {n}"), None, h)
                                              for n, h in hooks.items()])  # fmt: skip
    monkeypatch.setattr(forkhooks, "_IDLE", {})
    for name, predicate in idle.items():
        forkhooks.idle_when(hooks[name], predicate)  # type: ignore[arg-type]
    return calls


def test_a_fork_hook_declared_idle_is_left_out_only_while_idle_and_from_one_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse() -> bool:
        raise RuntimeError("cannot tell")

    pool: list[object] = []
    calls = _registrations(monkeypatch, {"a": lambda: not pool, "b": refuse})
    forkhooks.run_before(one_thread=True)
    forkhooks.run_after_in_child(one_thread=True)
    assert calls == ["before c", "before b", "b", "c"]  # a idle; b unsure, so run
    calls.clear()
    forkhooks.run_after_in_child(one_thread=False)  # other threads: every hook runs
    assert calls == ["a", "b", "c"]
    calls.clear()
    pool.append(object())  # a has work to do now
    forkhooks.run_after_in_child(one_thread=True)
    assert calls == ["a", "b", "c"]


def test_a_plan_of_idle_hooks_has_none_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _registrations(monkeypatch, {"a": lambda: True, "b": lambda: True, "c": lambda: 1})
    monkeypatch.setattr(forkhooks, "planned_child_hooks", [0])
    forkhooks.plan_after_in_child(one_thread=True)
    assert forkhooks.planned_child_hooks == [0]
    forkhooks.run_before(one_thread=True)
    forkhooks.run_after_in_child(one_thread=True)
    assert calls == []
    monkeypatch.setattr(forkhooks, "_ORIGINAL", lambda **hooks: None)  # (not this process's)
    forkhooks._recording(after_in_child=lambda: calls.append("late"))  # planned in at once
    assert forkhooks.planned_child_hooks == [1]
    forkhooks.run_after_in_child(one_thread=True)
    assert calls == ["late"]


def test_ledgerflows_own_fork_hooks_are_idle_with_nothing_open() -> None:
    """The fork server's tasks run none of ledgerflow's hooks: codec has no thread pool and
    no ledger is open in the fork server (a run's process, with its ledger, runs them).
    Declared idle, a hook has indeed nothing to do: run anyway, it changes nothing."""
    from ledgerflow import ledger
    from ledgerflow.executors.forkserver import _declare_idle_hooks
    from ledgerflow.ledger import Ledger

    _declare_idle_hooks()
    assert forkhooks._idle(codec._forget_pool) is (codec._pool is None)
    assert forkhooks._idle(Ledger._after_fork_in_child) is (
        not Ledger._open and not ledger._writers.data and not Ledger._open_lock.locked()
    )
    if forkhooks._idle(Ledger._after_fork_in_child):
        before = (dict(Ledger._open), Ledger._open_lock, list(Ledger._inherited_from_parent),
                  set(ledger._writers.data))  # fmt: skip
        Ledger._after_fork_in_child()
        after = (dict(Ledger._open), Ledger._open_lock, list(Ledger._inherited_from_parent),
                 set(ledger._writers.data))  # fmt: skip
        assert after == before and after[1] is before[1]
    if forkhooks._idle(codec._forget_pool):
        codec._forget_pool()
        assert codec._pool is None


FOREACH = """
from ledgerflow import FlowSpec, step

class Items(FlowSpec):
    @step
    def start(self):
        self.items = [{"k": i, "s": str(i) * (i % 5)} for i in range(40)]
        self.pairs = [("a", 1), ("b", 2)]
        self.next(self.outer, foreach="pairs")
    @step
    def outer(self):
        self.tag = self.input[0]
        self.next(self.work, foreach="items")
    @step
    def work(self):
        self.mine = (self.tag, self.input["k"], self.input["s"], self.index)
        self.next(self.inner_join)
    @step
    def inner_join(self, inputs):
        self.got = [i.mine for i in inputs]
        self.next(self.join)
    @step
    def join(self, inputs):
        self.got = sorted(g for i in inputs for g in i.got)
        self.next(self.end)
    @step
    def end(self):
        pass

if __name__ == "__main__":
    Items()
"""


def test_every_task_of_a_step_gets_exactly_its_own_item(tmp_path: Path) -> None:
    flow = tmp_path / "items.py"
    flow.write_text(textwrap.dedent(FOREACH))
    db = tmp_path / "l.db"
    run_flow(flow, db=db)
    got = load_artifact(db, latest_run_id(db, "Items"), "join", "got")
    assert got == sorted((t, i, str(i) * (i % 5), i) for t in ("a", "b") for i in range(40))


def test_the_fields_a_result_sends_are_every_field_in_order() -> None:
    for cls, fields in ((ArtifactRecord, _RECORD_FIELDS), (codec.EncodedBlob, _BLOB_FIELDS),
                        (Transition, _TRANSITION_FIELDS)):  # fmt: skip
        values = _distinct(cls)
        assert fields(cls(*values)) == tuple(values)
