"""A decorator given an attribute it does not take: the script stops while the class is defined."""

from ledgerflow import FlowSpec, retry, step


class DecoratorAttribute(FlowSpec):
    @retry(tims=1)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DecoratorAttribute()
