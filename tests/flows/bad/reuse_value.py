"""@reuse given something other than True or False."""

from ledgerflow import FlowSpec, reuse, step


class ReuseValue(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @reuse("no")
    @step
    def end(self):
        pass


if __name__ == "__main__":
    ReuseValue()
