import os

from ledgerflow import FlowSpec, step


class GrowsFlow(FlowSpec):
    """Writes 8 MB of incompressible data per task."""

    @step
    def start(self):
        self.items = list(range(4))
        self.next(self.fill, foreach="items")

    @step
    def fill(self):
        self.payload = os.urandom(8 * 1024 * 1024)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GrowsFlow()
