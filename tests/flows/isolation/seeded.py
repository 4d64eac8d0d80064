"""Module-level seeding, as ML code does it: under Metaflow every task re-imports the module,
so every task starts from the seeded state. `--late` style: here random and numpy.random are
imported before ledgerflow (the other flow imports them after)."""

import os
import random

import numpy as np
import numpy.random  # noqa: F401 - loaded at module level, as sklearn and friends do

from ledgerflow import FlowSpec, step

if os.environ.get("LF_TEST_SEED"):
    random.seed(int(os.environ["LF_TEST_SEED"]))
    np.random.seed(int(os.environ["LF_TEST_SEED"]))


class SeededFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2, 3]
        self.next(self.draw, foreach="items")

    @step
    def draw(self):
        self.py = random.random()
        self.np = float(np.random.rand())
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pys = [i.py for i in inputs]
        self.nps = [i.np for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SeededFlow()
