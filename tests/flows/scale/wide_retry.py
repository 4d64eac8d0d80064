"""A foreach wider than the Client API's first pages; every 7th task fails its first attempt."""

from ledgerflow import FlowSpec, Parameter, current, retry, step


class WideRetryFlow(FlowSpec):
    n = Parameter("n", default=160)

    @step
    def start(self):
        self.items = list(range(int(self.n)))
        self.next(self.fan, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def fan(self):
        if self.input % 7 == 0 and current.retry_count == 0:
            raise ConnectionError(f"transient failure on {self.input}")
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    WideRetryFlow()
