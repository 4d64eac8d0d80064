"""Each foreach task prints far more than a pipe holds, to stdout from Python and to stderr
from the file descriptor itself (as C code or a subprocess would)."""

import os
import sys

from ledgerflow import FlowSpec, Parameter, step


class LoudFlow(FlowSpec):
    n = Parameter("n", default=4)
    kb = Parameter("kb", default=2048)  # printed to stdout per task; a quarter to stderr

    @step
    def start(self):
        self.items = list(range(int(self.n)))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        line = f"{self.input:04d} " + "x" * 1019 + "\n"  # 1 KiB a line
        for _ in range(int(self.kb)):
            sys.stdout.write(line)
        sys.stdout.flush()
        err = ("e" * 1023 + "\n").encode()
        for _ in range(int(self.kb) // 4):
            os.write(2, err)
        self.out = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LoudFlow()
