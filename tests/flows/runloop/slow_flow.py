"""A task that prints a line, then waits for a file to appear (at most a minute)."""

import os
import time

from ledgerflow import FlowSpec, Parameter, step


class SlowFlow(FlowSpec):
    go = Parameter("go", default="")

    @step
    def start(self):
        print("first line, while the task runs", flush=True)
        deadline = time.time() + 60
        while not os.path.exists(self.go) and time.time() < deadline:
            time.sleep(0.05)
        print("last line")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlowFlow()
