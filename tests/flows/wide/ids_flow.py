"""A foreach branch and a linear branch ending together: task ids follow the order tasks were
scheduled in (the foreach's, made lazily, still take theirs when the split ends)."""

from ledgerflow import FlowSpec, step


class IdsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.items = [0, 1, 2]
        self.next(self.w, foreach="items")

    @step
    def w(self):
        self.next(self.join_w)

    @step
    def join_w(self, inputs):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.b2)

    @step
    def b2(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    IdsFlow()
