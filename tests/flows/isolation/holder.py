import os
import time

from ledgerflow import FlowSpec, Parameter, step


class HolderFlow(FlowSpec):
    """Two tasks print, write their pid to a folder, and hold while the folder has a file
    named `hold` (up to a minute)."""

    pids = Parameter("pids", default="")

    @step
    def start(self):
        self.items = [0, 1]
        self.next(self.hold, foreach="items")

    @step
    def hold(self):
        print(f"holding {self.input}", flush=True)
        with open(os.path.join(self.pids, f"{self.input}.{os.getpid()}"), "w"):
            pass
        deadline = time.time() + 60
        while os.path.exists(os.path.join(self.pids, "hold")) and time.time() < deadline:
            time.sleep(0.02)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HolderFlow()
