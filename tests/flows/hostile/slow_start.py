import os
import time

from ledgerflow import FlowSpec, Parameter, step


class SlowStartFlow(FlowSpec):
    """A start step that waits (while $SLOW_START is set) to be killed."""

    alpha = Parameter("alpha", default=1, type=int)

    @step
    def start(self):
        while os.environ.get("SLOW_START"):
            time.sleep(0.05)
        self.doubled = self.alpha * 2
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlowStartFlow()
