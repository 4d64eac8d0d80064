from ledgerflow import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.outer = ["b", "a"]
        self.next(self.mid, foreach="outer")

    @step
    def mid(self):
        self.letter = self.input
        self.inner = [3, 1, 2]
        self.next(self.leaf, foreach="inner")

    @step
    def leaf(self):
        self.stack = self.foreach_stack()
        self.label = f"{self.letter}{self.input}"
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.labels = [i.label for i in inputs]
        self.letter = inputs[0].letter
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_labels = [i.labels for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestedForeachFlow()
