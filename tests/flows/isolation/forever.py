import threading
import time

from ledgerflow import FlowSpec, step, timeout


class ForeverFlow(FlowSpec):
    """A step that returns at once, leaving a non-daemon thread that never ends: its task's
    process waits for it (as Metaflow's does), until the step's @timeout stops the task."""

    @timeout(seconds=1)
    @step
    def start(self):
        threading.Thread(target=time.sleep, args=(3600,)).start()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeverFlow()
