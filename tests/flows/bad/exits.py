import sys

from ledgerflow import FlowSpec, step


class ExitsFlow(FlowSpec):
    @step
    def start(self):
        self.before = 1
        sys.exit(3)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ExitsFlow()
