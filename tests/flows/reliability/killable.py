import os
import random
import time

from ledgerflow import FlowSpec, Parameter, step


class KillableFlow(FlowSpec):
    """Many small tasks, each writing a 1 MB blob: a wide window for a kill to land in."""

    width = Parameter("width", default=24)
    nap = Parameter("nap", default=0.03)

    @step
    def start(self):
        self.items = list(range(int(self.width)))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(random.random() * float(self.nap))
        self.payload = os.urandom(1024 * 1024)
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = [i.square for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.squares)


if __name__ == "__main__":
    KillableFlow()
