"""Foreach + join + branch, with output on both streams: the Dask tests compare its
artifacts (by SHA) with the default executor's."""

import sys

from ledgerflow import FlowSpec, Parameter, current, step


class FanoutFlow(FlowSpec):
    scale = Parameter("scale", default=3)

    @step
    def start(self):
        self.big = list(range(50_000))  # one blob every foreach task reads
        self.items = ["a", "b", "c", "d"]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.value = (self.input * self.scale) + str(len(self.big))
        print(f"working on {self.input}")
        print(f"warning about {self.input}", file=sys.stderr)
        self.host_seen = current.task_id is not None
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.merge_artifacts(inputs, include=["big"])
        self.next(self.split)

    @step
    def split(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "L"
        self.next(self.meet)

    @step
    def right(self):
        self.side = "R"
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = [inputs.left.side, inputs.right.side]
        self.merge_artifacts(inputs, exclude=["side"])
        self.next(self.end)

    @step
    def end(self):
        self.total = len(self.values) + len(self.big)


if __name__ == "__main__":
    FanoutFlow()
