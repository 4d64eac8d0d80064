"""Seeding with random and numpy imported after ledgerflow (numpy 2 loads numpy.random on
first use, here at the seed call)."""

# ruff: noqa: I001 - the import order is the point of this flow
from ledgerflow import FlowSpec, step
import random
import numpy as np

random.seed(11)
np.random.seed(11)


class LateSeededFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2]
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
    LateSeededFlow()
