import time

from ledgerflow import FlowSpec, catch, step, timeout


class CaughtTimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    @catch(var="timed_out", print_exception=False)
    @timeout(seconds=1)
    @step
    def slow(self):
        time.sleep(30)  # a C call: the task fails at the deadline, the sleep is abandoned
        self.next(self.end)

    @step
    def end(self):
        self.kind = self.timed_out.type


if __name__ == "__main__":
    CaughtTimeoutFlow()
