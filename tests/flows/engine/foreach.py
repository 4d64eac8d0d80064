from ledgerflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.values = [5, 3, 9, 1, 7, 3]
        self.next(self.square, foreach="values")

    @step
    def square(self):
        self.item = self.input
        self.position = self.index
        self.stack = self.foreach_stack()
        self.squared = self.input**2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = [inp.squared for inp in inputs]
        self.positions = [inp.position for inp in inputs]
        self.count = len(inputs)
        self.first_item = inputs[0].item
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachFlow()
