"""The first attempt of `work` kills its own process (the Dask worker) mid-task."""

import os
import signal

from ledgerflow import FlowSpec, current, retry, step


class KilledWorkerFlow(FlowSpec):
    @step
    def start(self):
        self.payload = "from start"
        self.next(self.work)

    @retry(times=1)
    @step
    def work(self):
        print(f"attempt {current.retry_count}")
        if current.retry_count == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        self.survived = self.payload + " on attempt " + str(current.retry_count)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    KilledWorkerFlow()
