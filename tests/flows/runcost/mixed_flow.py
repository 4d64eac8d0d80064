"""A foreach whose tasks write every kind of row the runtime batches: values of several
types (some equal across tasks, so one commit meets the same blob twice), searchable text,
output on both streams or none, and an exception that @catch lets through."""

import sys

from ledgerflow import FlowSpec, Parameter, catch, step


class MixedFlow(FlowSpec):
    n = Parameter("n", default=24)

    @step
    def start(self):
        self.items = list(range(int(self.n)))
        self.next(self.work, foreach="items")

    @catch(var="problem")
    @step
    def work(self):
        i = self.input
        self.same = "zebracrossing shared by every task"
        self.text = f"walrus{i} note number {i}"
        self.raw = bytes([i % 256]) * (i + 1)
        self.nothing = None
        self.flag = i % 2 == 0
        self.pair = (i, i % 3)
        if i % 3 == 0:
            print(f"task {i} says hello")
            print(f"task {i} to stderr", file=sys.stderr)
        if i % 5 == 0:
            sys.stdout.write(f"last words of {i}")  # no newline: the tail of a line
        if i == 7:
            raise ValueError("seven is unlucky")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(1 for i in inputs if not i.problem)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MixedFlow()
