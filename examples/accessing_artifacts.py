"""Accessing artifacts: they flow automatically from step to step."""

from ledgerflow import FlowSpec, step


def load_data():
    return [3, 1, 4, 1, 5, 9, 2, 6]


def transform(data):
    return sorted(x * 10 for x in data)


class AccessingArtifacts(FlowSpec):
    @step
    def start(self):
        self.data = load_data()
        self.next(self.process)

    @step
    def process(self):
        # self.data is automatically available
        self.result = transform(self.data)
        self.next(self.end)

    @step
    def end(self):
        print(f"Result: {self.result}")


if __name__ == "__main__":
    AccessingArtifacts()
