"""A wide foreach (`--width` tasks) with a dict artifact and a printed line per task: what
the UI summarises, pages and diffs (tests/test_ui.py, docs/cards-and-ui.md screenshots)."""

from ledgerflow import FlowSpec, Parameter, step


class WideFlow(FlowSpec):
    width = Parameter("width", default=200)
    rate = Parameter("rate", default=0.1)

    @step
    def start(self):
        self.items = list(range(self.width))
        self.summary = {"quartiles": [1, 2, 3], "label": "movies", "rate": self.rate}
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.square = self.input * self.input
        print(f"fan item {self.input} squared {self.square}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    WideFlow()
