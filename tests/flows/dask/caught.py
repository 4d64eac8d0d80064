"""A failing step under @catch on Dask, then a step that fails for good."""

from ledgerflow import FlowSpec, Parameter, catch, step


class CaughtFlow(FlowSpec):
    fail_at_end = Parameter("fail_at_end", default=False, type=bool)

    @step
    def start(self):
        self.next(self.risky)

    @catch(var="problem")
    @step
    def risky(self):
        if self.fail_at_end is not None:  # always: the lint wants a self.next() after it
            raise ValueError("bad input on the worker")
        self.next(self.end)

    @step
    def end(self):
        self.seen = self.problem.type if self.problem else None
        if self.fail_at_end:
            raise KeyError("uncaught on the worker")


if __name__ == "__main__":
    CaughtFlow()
