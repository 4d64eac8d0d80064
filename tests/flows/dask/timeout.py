"""A step that outlives its @timeout on a Dask worker."""

import time

from ledgerflow import FlowSpec, step, timeout


class TimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.stuck)

    @timeout(seconds=1)
    @step
    def stuck(self):
        for _ in range(600):
            time.sleep(0.05)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
