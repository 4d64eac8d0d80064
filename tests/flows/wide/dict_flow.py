"""A foreach over a dict with keys 0..n-1: Metaflow gives each task `items[i]` (the value),
not the i-th key; a task's item is chosen the same way."""

from ledgerflow import FlowSpec, step


class DictFlow(FlowSpec):
    @step
    def start(self):
        self.items = {0: "zero", 1: "one", 2: "two"}
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.got = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.gots = sorted(i.got for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DictFlow()
