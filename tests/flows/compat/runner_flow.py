"""A flow for Runner tests: parameters of several kinds, and an end step that fails while
$RUNNER_FLOW_FAIL is set (so a resume without it succeeds)."""

import os

from ledgerflow import FlowSpec, JSONType, Parameter, step


class RunnerFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)
    learning_rate = Parameter("learning-rate", default=0.5)
    config = Parameter("config", type=JSONType, default='{"k": 1}')
    verbose = Parameter("verbose", default=False, type=bool)

    @step
    def start(self):
        print(f"alpha is {self.alpha}")
        print("second line")
        self.result = (self.alpha, self.learning_rate, self.config)
        self.next(self.end)

    @step
    def end(self):
        if os.environ.get("RUNNER_FLOW_FAIL"):
            raise ValueError("asked to fail")
        self.done = True


if __name__ == "__main__":
    RunnerFlow()
