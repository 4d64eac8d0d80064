"""Random state in tasks that run in processes forked from the fork server: as under
Metaflow, where each task is a fresh interpreter importing the flow's module again. A module
that seeds gives every task the seeded state; one that does not gives each task its own.
(Metaflow 2.19.39, same flows: seeded -> every task draws random.Random(42).random(); not
seeded -> four different draws, for `random` and for numpy's global state alike.)"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from ledgerflow import Flow, namespace

from .helpers import FLOWS, run_flow

SEEDED = FLOWS / "isolation" / "seeded.py"
LATE = FLOWS / "isolation" / "seeded_late.py"


def _draws(db, flow: str) -> tuple[list[float], list[float]]:
    namespace(None)
    join = Flow(flow, ledger=str(db)).latest_run["join"].task
    return join["pys"].data, join["nps"].data


@pytest.fixture
def seed_env():
    os.environ["LF_TEST_SEED"] = "42"
    yield
    del os.environ["LF_TEST_SEED"]


def test_a_module_level_seed_holds_in_every_task(db_path, seed_env):
    run_flow(SEEDED, db=db_path)
    pys, nps = _draws(db_path, "SeededFlow")
    assert pys == [random.Random(42).random()] * 4  # CPython reseeds after fork: undone
    assert nps == [float(np.random.RandomState(42).rand())] * 4


def test_a_seed_after_importing_ledgerflow_holds_too(db_path):
    run_flow(LATE, db=db_path)
    pys, nps = _draws(db_path, "LateSeededFlow")
    assert pys == [random.Random(11).random()] * 3
    assert nps == [float(np.random.RandomState(11).rand())] * 3


def test_unseeded_tasks_each_draw_their_own_numbers(db_path):
    run_flow(SEEDED, db=db_path)
    pys, nps = _draws(db_path, "SeededFlow")
    assert len(set(pys)) == 4
    assert len(set(nps)) == 4  # numpy's global state is not one copy shared by every task
