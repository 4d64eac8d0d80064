from ledgerflow import FlowSpec, catch, retry, step


class CatchFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 0, 2]
        self.next(self.divide, foreach="items")

    @catch(var="compute_failed")
    @retry(times=1, minutes_between_retries=0)
    @step
    def divide(self):
        self.before = "set before the raise"
        self.result = 10 // self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.results = [getattr(i, "result", None) for i in inputs]
        self.errors = [i.compute_failed.type if i.compute_failed else None for i in inputs]
        self.messages = [i.compute_failed.exception if i.compute_failed else None for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CatchFlow()
