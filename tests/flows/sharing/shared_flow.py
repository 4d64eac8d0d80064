import os

from ledgerflow import FlowSpec, Parameter, step


class Bomb:
    """Unpickling this creates the file named by $BOMB_PATH: a stand-in for malicious code."""

    def __reduce__(self):
        return (open, (os.environ.get("BOMB_PATH", os.devnull), "w"))


class SharedFlow(FlowSpec):
    label = Parameter("label", default="a")
    with_bomb = Parameter("with_bomb", default=False)

    @step
    def start(self):
        self.items = [3, 1, 2]
        self.big = b"\x00\x01" * 200_000
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.result = {"item": self.input, "label": self.label}
        self.shape = (self.input, 2)  # a tuple: stored as a pickle
        self.next(self.join)

    @step
    def join(self, inputs):
        self.results = [i.result for i in inputs]
        if self.with_bomb:
            self.bomb = Bomb()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SharedFlow()
