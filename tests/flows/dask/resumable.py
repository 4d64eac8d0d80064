"""Fails in one foreach item while the file named by --fail-flag exists (the flag is a
file, not an environment variable: the step runs on a Dask worker)."""

import os

from ledgerflow import FlowSpec, Parameter, step


class DaskResumableFlow(FlowSpec):
    fail_flag = Parameter("fail_flag", default="")

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        if self.input == 2 and self.fail_flag and os.path.exists(self.fail_flag):
            raise RuntimeError("item 2 failed on purpose")
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DaskResumableFlow()
