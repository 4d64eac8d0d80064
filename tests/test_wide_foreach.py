"""A wide foreach costs the runtime the same per task whatever its width: its tasks' specs
are made as slots free up, a join names its inputs by task pk (and reads their artifacts
from the ledger), and each foreach task gets its own item, not the whole list.
(Time and memory figures: scripts/bench.py; here, what they rest on.)"""

from __future__ import annotations

import pickle

import pytest

from ledgerflow import Flow, namespace
from ledgerflow.executors.processes import ProcessExecutor
from ledgerflow.ledger import Ledger

from .helpers import FLOWS, query, run_flow
from .test_cost_model import load_flow

WIDE = FLOWS / "wide" / "items_flow.py"


@pytest.mark.parametrize("executor", ["process", "thread"])
def test_each_foreach_task_decodes_its_own_item_not_the_whole_list(db_path, executor):
    run_flow(WIDE, "--n", "7", "--executor", executor, db=db_path)
    namespace(None)
    run = Flow("ItemsFlow", ledger=str(db_path)).latest_run
    assert run.successful
    assert run["join"].task["squares"].data == [i * i for i in range(7)]
    assert run["join"].task["all_same"].data is True
    assert sorted(t["square"].data for t in run["work"]) == [i * i for i in range(7)]


class Recording(ProcessExecutor):
    """The default executor, noting each spec it is given and how many specs the runtime
    had made by then."""

    def __init__(self, made: list[int]):
        super().__init__(max_workers=4)
        self.specs: list[tuple[object, int]] = []
        self.made = made

    def submit(self, spec, output):
        self.specs.append((spec, self.made[0]))
        return super().submit(spec, output)


def _run_recorded(db_path, monkeypatch, n: int) -> Recording:
    from ledgerflow.runtime import Runtime

    made = [0]
    original = Runtime._spec

    def counting(self, *args, **kwargs):
        made[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Runtime, "_spec", counting)
    flow = load_flow(WIDE, "ItemsFlow")
    executor = Recording(made)
    outcome = Runtime(flow, Ledger.open(db_path), {"n": n}, executor=executor, quiet=True,
                      echo_logs=False).run()  # fmt: skip
    assert outcome.status == "succeeded"
    return executor


def test_a_wide_foreach_makes_its_task_specs_as_slots_free_up(db_path, monkeypatch):
    executor = _run_recorded(db_path, monkeypatch, 60)
    first_work = next(made for spec, made in executor.specs if spec.step == "work")
    # start's spec, then no more work specs than the 4 slots can take (not all 60)
    assert first_work <= 1 + 4
    ids = [int(s.task_id) for s, _ in executor.specs if s.step == "work"]
    assert ids == list(range(2, 62))  # ids still follow the list, as before


def test_a_join_names_its_inputs_by_task_and_tasks_get_their_item(db_path, monkeypatch):
    executor = _run_recorded(db_path, monkeypatch, 60)
    specs = {s.step: s for s, _ in executor.specs}
    join = specs["join"]
    assert join.inputs == [] and len(join.input_pks) == 60
    again_pks = query(db_path, "select id from task where step = 'again' order by id")
    assert sorted(join.input_pks) == [pk for (pk,) in again_pks]
    # What the join's process gets does not grow with its inputs' artifacts.
    assert len(pickle.dumps(join)) < 4096
    items_sha = query(db_path, "select a.sha from artifact a join task t on t.id = a.task_id"
                               " where t.step = 'start' and a.name = 'items'")[0][0]  # fmt: skip
    for spec, _ in executor.specs:
        if spec.step in ("work", "again"):
            assert spec.foreach_item is not None
            assert items_sha not in spec.preloaded  # each task is sent its item only


def test_lazy_foreach_tasks_take_their_ids_when_the_split_ends(db_path):
    from ledgerflow.runtime import Runtime

    from .test_cost_model import RunsAtSubmit

    flow = load_flow(FLOWS / "wide" / "ids_flow.py", "IdsFlow")
    Runtime(flow, Ledger.open(db_path), {}, executor=RunsAtSubmit(), quiet=True,
            echo_logs=False).run()  # fmt: skip
    ids = dict(query(db_path, "select step || ':' || task_id, 1 from tasks"))
    # a and b end in one round; a's foreach ends first (lower id): its tasks come first
    assert {"w:4", "w:5", "w:6", "b2:7"} <= set(ids)


def test_a_foreach_over_a_dict_gives_each_task_the_value_as_metaflow_does(db_path):
    run_flow(FLOWS / "wide" / "dict_flow.py", db=db_path)
    namespace(None)
    run = Flow("DictFlow", ledger=str(db_path)).latest_run
    assert run["join"].task["gots"].data == ["one", "two", "zero"]  # Metaflow 2.19.39: same
