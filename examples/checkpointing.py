"""Checkpointing: save intermediate state as an artifact while a step works."""

from ledgerflow import FlowSpec, step


class TinyModel:
    def __init__(self):
        self.weights = [0.0, 0.0]

    def state_dict(self):
        return {"weights": list(self.weights)}


def train_epoch(model):
    model.weights = [w + 0.01 for w in model.weights]


class CheckpointingFlow(FlowSpec):
    @step
    def start(self):
        self.model = TinyModel()
        self.next(self.train)

    @step
    def train(self):
        for epoch in range(100):
            train_epoch(self.model)
            # Checkpoint every 10 epochs
            if epoch % 10 == 0:
                self.checkpoint = self.model.state_dict()
        self.next(self.end)

    @step
    def end(self):
        print(f"Last checkpoint: {self.checkpoint}")


if __name__ == "__main__":
    CheckpointingFlow()
