"""Creating artifacts: every attribute set on self becomes a data artifact."""

from ledgerflow import FlowSpec, step


class ArtifactExample(FlowSpec):
    @step
    def start(self):
        # All of these become artifacts
        self.raw_data = [1, 2, 3, 4, 5]
        self.model = {"weights": [0.5, 0.3, 0.2]}
        self.accuracy = 0.95
        self.metadata = {"version": "1.0", "date": "2024-01-01"}
        self.next(self.end)

    @step
    def end(self):
        # Access artifacts from previous step
        print(f"Accuracy: {self.accuracy}")
        print(f"Data: {self.raw_data}")


if __name__ == "__main__":
    ArtifactExample()
