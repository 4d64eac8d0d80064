"""Its foreach items wait while the file named by --hold exists (so a test can take the
scheduler away mid-task), then finish."""

import os
import time

from ledgerflow import FlowSpec, Parameter, step


class WaitsFlow(FlowSpec):
    hold = Parameter("hold", default="")

    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        print("waiting", flush=True)  # tests wait for this line: the task is on a worker
        deadline = time.time() + 60
        while self.hold and os.path.exists(self.hold) and time.time() < deadline:
            time.sleep(0.05)
        self.value = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    WaitsFlow()
