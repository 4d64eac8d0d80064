"""@retry (one failed attempt, then success), @catch, and a step that fails while
$CLIENT_TEST_FAIL is 1 (so the run can be resumed)."""

import os

from ledgerflow import FlowSpec, catch, current, retry, step


class ControlFlow(FlowSpec):
    @step
    def start(self):
        self.base = 7
        self.next(self.flaky)

    @retry(times=1, minutes_between_retries=0)
    @step
    def flaky(self):
        print(f"attempt {current.retry_count}")
        if current.retry_count == 0:
            raise ConnectionError("transient failure")
        self.next(self.risky)

    @catch(var="err", print_exception=False)
    @step
    def risky(self):
        if self.base:
            raise KeyError("missing thing")
        self.next(self.fragile)

    @step
    def fragile(self):
        if os.environ.get("CLIENT_TEST_FAIL") == "1":
            raise RuntimeError("fragile failed")
        self.next(self.end)

    @step
    def end(self):
        self.done = True


if __name__ == "__main__":
    ControlFlow()
