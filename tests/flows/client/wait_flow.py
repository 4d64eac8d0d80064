"""Waits in `hold` until the file named by --go exists (or 30 s pass)."""

import os
import time

from ledgerflow import FlowSpec, Parameter, step


class WaitFlow(FlowSpec):
    go = Parameter("go", default="")

    @step
    def start(self):
        self.started = True
        self.next(self.hold)

    @step
    def hold(self):
        deadline = time.time() + 30
        while self.go and not os.path.exists(self.go) and time.time() < deadline:
            time.sleep(0.02)
        self.next(self.end)

    @step
    def end(self):
        self.done = True


if __name__ == "__main__":
    WaitFlow()
