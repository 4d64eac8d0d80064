"""Random state in tasks that run in processes forked from the fork server: as under
Metaflow, where each task is a fresh interpreter importing the flow's module again. A module
that seeds gives every task the seeded state; one that does not gives each task its own.
(Metaflow 2.19.39, same flows: seeded -> every task draws random.Random(42).random(); not
seeded -> four different draws, for `random` and for numpy's global state alike.)"""

from __future__ import annotations

import random

import numpy as np
import pytest

from ledgerflow import Flow, namespace

from .helpers import FLOWS, run_flow

SEEDED = FLOWS / "isolation" / "seeded.py"


def _draws(db) -> tuple[list[float], list[float]]:
    namespace(None)
    join = Flow("SeededFlow", ledger=str(db)).latest_run["join"].task
    return join["pys"].data, join["nps"].data


@pytest.mark.parametrize("order", ["early", "late"])  # random/numpy before or after ledgerflow
def test_a_module_level_seed_holds_in_every_task(db_path, monkeypatch, order):
    monkeypatch.setenv("LF_TEST_SEED", "42")
    monkeypatch.setenv("LF_TEST_ORDER", order)
    run_flow(SEEDED, db=db_path)
    pys, nps = _draws(db_path)
    assert pys == [random.Random(42).random()] * 4  # CPython reseeds after fork: undone
    assert nps == [float(np.random.RandomState(42).rand())] * 4


def test_unseeded_tasks_each_draw_their_own_numbers(db_path):
    run_flow(SEEDED, db=db_path)
    pys, nps = _draws(db_path)
    assert len(set(pys)) == 4
    assert len(set(nps)) == 4  # numpy's global state is not one copy shared by every task
