"""Foreach artifacts: each iteration gets self.input and makes its own artifacts."""

from ledgerflow import FlowSpec, step


def train_model(config):
    return {"lr": config["lr"], "batch_size": config["batch_size"], "weights": [0.1, 0.2]}


def evaluate(model):
    return round(0.9 - model["lr"] * 10 + model["batch_size"] / 10000, 4)


class ForeachArtifacts(FlowSpec):
    @step
    def start(self):
        self.parameters = [
            {"lr": 0.01, "batch_size": 32},
            {"lr": 0.001, "batch_size": 64},
            {"lr": 0.0001, "batch_size": 128},
        ]
        self.next(self.train, foreach="parameters")

    @step
    def train(self):
        # Access current parameter set
        config = self.input
        print(f"Training with lr={config['lr']}")
        # Create artifacts specific to this iteration
        self.model = train_model(config)
        self.accuracy = evaluate(self.model)
        self.next(self.join)

    @step
    def join(self, inputs):
        # Access all models and accuracies
        self.all_models = [inp.model for inp in inputs]
        self.best_accuracy = max(inp.accuracy for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print(f"Best accuracy: {self.best_accuracy}")


if __name__ == "__main__":
    ForeachArtifacts()
