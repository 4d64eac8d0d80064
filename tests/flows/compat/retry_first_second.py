"""A step that fails within the first second of its first attempt (a transient problem,
as the "Effective Data Science Infrastructure" book's retryflow.py has), with @retry's
default pause: Metaflow's attempts land ~0.3 s apart, so its fourth one gets past it."""

import time

from ledgerflow import FlowSpec, Parameter, current, retry, step


class RetryFirstSecondFlow(FlowSpec):
    stamp = Parameter("stamp", help="A file where the first attempt notes when it started.")

    @retry(times=3)
    @step
    def start(self):
        if current.retry_count == 0:
            with open(self.stamp, "w") as f:
                f.write(repr(time.time()))
        with open(self.stamp) as f:
            first = float(f.read())
        self.waited = time.time() - first
        if self.waited < 1.0:
            raise ConnectionError(f"still failing {self.waited:.2f} s after the first attempt")
        self.attempt = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFirstSecondFlow()
