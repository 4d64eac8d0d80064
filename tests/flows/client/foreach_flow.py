"""A foreach over non-monotonic items with a join, then a static branch and its join."""

from ledgerflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = [30, 10, 20]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.item = self.input
        self.sq = self.input * self.input
        print("item", self.input)
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.results = [i.sq for i in inputs]
        self.items = inputs[0].items
        self.next(self.fork)

    @step
    def fork(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "left"
        self.left_value = 1
        self.next(self.meet)

    @step
    def right(self):
        self.side = "right"
        self.right_value = 2
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.merge_artifacts(inputs, exclude=["side"])
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.results) + self.left_value + self.right_value


if __name__ == "__main__":
    ForeachFlow()
