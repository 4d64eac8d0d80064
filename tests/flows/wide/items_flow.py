"""A foreach whose list cannot be loaded whole: its tasks must get `self.input` from their
own item, never by loading the list (which costs each of N tasks the whole list)."""

from ledgerflow import FlowSpec, Parameter, step


def _refuse():
    raise RuntimeError("a foreach task loaded the whole list")


class Items:
    """A sequence of n items that pickles fine but refuses to be loaded."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return {"i": i, "square": i * i}

    def __reduce__(self):
        return (_refuse, ())


class ItemsFlow(FlowSpec):
    n = Parameter("n", default=5)

    @step
    def start(self):
        self.items = Items(int(self.n))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.square = self.input["square"]
        self.next(self.again)

    @step
    def again(self):  # a later step of the same foreach branch sees the same input
        self.same = self.input["i"] ** 2 == self.square
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = sorted(i.square for i in inputs)
        self.all_same = all(i.same for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ItemsFlow()
