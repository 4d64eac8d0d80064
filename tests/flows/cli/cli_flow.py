"""The flow the CLI tests inspect: start -> fan (foreach over range(n)) -> join -> end.

`--alpha` changes `x` and fan[1]'s `y`; `--n` changes the number of fan tasks; `--fail`
makes fan[2] raise. start writes to stdout and stderr, and holds a large string and a
pickled value (a date).
"""

import datetime
import sys

from ledgerflow import FlowSpec, Parameter, step


class CliFlow(FlowSpec):
    n = Parameter("n", default=3)
    alpha = Parameter("alpha", default=0.5)
    fail = Parameter("fail", default=False, type=bool)

    @step
    def start(self):
        """Fan out over range(n)."""
        self.x = self.alpha
        self.items = list(range(self.n))
        self.big = "z" * 5000
        self.when = datetime.date(2020, 1, 2)  # not JSON: stored as a pickle
        print("hello from start")
        print("warning from start", file=sys.stderr)
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        if self.fail and self.input == 2:
            raise ValueError("boom in fan")
        self.y = self.alpha if self.input == 1 else self.input * 2
        print(f"fan {self.input}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.merge_artifacts(inputs, include=["x"])
        self.next(self.end)

    @step
    def end(self):
        print("done")


if __name__ == "__main__":
    CliFlow()
