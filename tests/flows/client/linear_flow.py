"""A linear flow: start -> middle -> end. `--fail` makes `middle` raise."""

import datetime
import sys

from ledgerflow import FlowSpec, Parameter, step


class LinearFlow(FlowSpec):
    alpha = Parameter("alpha", default=3)
    fail = Parameter("fail", default=False, type=bool)

    @step
    def start(self):
        self.x = 1
        self.payload = {"numbers": [1, 2, 3]}
        self.when = datetime.date(2020, 1, 2)  # not JSON: stored as a pickle
        print("hello from start")
        print("warning from start", file=sys.stderr)
        self.next(self.middle)

    @step
    def middle(self):
        if self.fail:
            raise ValueError("boom 42")
        self.x += 1
        self.next(self.end)

    @step
    def end(self):
        self.result = self.x * self.alpha


if __name__ == "__main__":
    LinearFlow()
