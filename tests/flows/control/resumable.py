import os

from ledgerflow import FlowSpec, Parameter, current, step


class ResumableFlow(FlowSpec):
    """Fails where $FAIL_AT says (a step name, or 'item2' for one foreach item)."""

    scale = Parameter("scale", default=10)

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.origin_seen = current.origin_run_id
        self.next(self.work, foreach="items")

    @step
    def work(self):
        if os.environ.get("FAIL_AT") == f"item{self.input}":
            raise RuntimeError(f"item {self.input} failed")
        self.value = self.input * self.scale
        self.ran_in = current.run_id
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.ran_in = current.run_id
        self.next(self.after)

    @step
    def after(self):
        if os.environ.get("FAIL_AT") == "after":
            raise RuntimeError("after failed")
        self.total = sum(self.values)
        self.origin_in_after = current.origin_run_id
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ResumableFlow()
