"""Six steps in a chain with a foreach and a join, for `run --reuse` (tests/test_reuse.py
edits a copy of this file). `stamp` opts out; `fourth` is the only caller of `helper`."""

import time

from ledgerflow import FlowSpec, Parameter, reuse, step

OFFSET = 10


def helper(x):
    return x * 2


class ChainFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.a = self.alpha + OFFSET
        self.next(self.second)

    @step
    def second(self):
        self.items = [1, 2, 3]
        print("second ran")
        self.next(self.third, foreach="items")

    @step
    def third(self):
        self.v = self.input + self.a
        self.next(self.fourth)

    @step
    def fourth(self):
        self.w = helper(self.v)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.w for i in inputs)
        self.merge_artifacts(inputs, include=["a"])
        self.next(self.stamp)

    @reuse(False)
    @step
    def stamp(self):
        self.at = time.time_ns()
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    ChainFlow()
