"""Artifact collections: group related results in one dict artifact."""

from ledgerflow import FlowSpec, step


def generate_plots():
    return {"loss_curve": [0.9, 0.5, 0.2, 0.05]}


def create_summary_tables():
    return [{"metric": "accuracy", "value": 0.95}, {"metric": "loss", "value": 0.05}]


class ArtifactCollections(FlowSpec):
    @step
    def start(self):
        self.next(self.analyze)

    @step
    def analyze(self):
        self.results = {
            "metrics": {"accuracy": 0.95, "loss": 0.05},
            "plots": generate_plots(),
            "tables": create_summary_tables(),
        }
        self.next(self.end)

    @step
    def end(self):
        print(self.results["metrics"])


if __name__ == "__main__":
    ArtifactCollections()
