"""MyFlow: the flow the spec's "Inspecting Artifacts" example reads back (see inspect_artifacts.py)."""

from ledgerflow import FlowSpec, Parameter, step


class MyFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5, help="Learning rate")

    @step
    def start(self):
        self.data = list(range(10))
        self.next(self.process)

    @step
    def process(self):
        self.model = {"weights": [0.5, 0.3, 0.2], "alpha": self.alpha}
        self.accuracy = 0.9 + self.alpha / 10
        self.next(self.end)

    @step
    def end(self):
        print(f"accuracy={self.accuracy}")


if __name__ == "__main__":
    MyFlow()
