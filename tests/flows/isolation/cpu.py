import os
import time

from ledgerflow import FlowSpec, step


class CpuFlow(FlowSpec):
    """Two CPU-bound tasks: in processes of their own they run at the same time."""

    @step
    def start(self):
        self.items = [0, 1]
        self.next(self.burn, foreach="items")

    @step
    def burn(self):
        self.began = time.time()
        x, end = 0, time.process_time() + 0.5  # half a second of this process's CPU
        while time.process_time() < end:
            x += 1
        self.ended = time.time()
        self.pid = os.getpid()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.spans = [(i.began, i.ended) for i in inputs]
        self.pids = [i.pid for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CpuFlow()
