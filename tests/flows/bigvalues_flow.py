"""Arrays big enough to be stored out of band (tests/test_bigload.py), read by later steps."""

import numpy as np

from ledgerflow import FlowSpec, Parameter, step


class BigValuesFlow(FlowSpec):
    n = Parameter("n", default=150_000)

    @step
    def start(self):
        self.noise = np.random.default_rng(7).random(int(self.n))  # 1.2 MB by default
        self.payload = bytearray(bytes(range(256)) * 1000)
        self.next(self.middle)

    @step
    def middle(self):
        self.mean = float(self.noise.mean())  # read, not changed
        self.next(self.end)

    @step
    def end(self):
        self.stats = {"total": float(self.noise.sum()), "mean": self.mean}


if __name__ == "__main__":
    BigValuesFlow()
