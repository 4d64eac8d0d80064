"""A small flow with searchable, queryable artifacts, run many times by the benchmarks."""

from ledgerflow import FlowSpec, Parameter, step

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
]


class HistoryFlow(FlowSpec):
    seed = Parameter("seed", default=0)

    @step
    def start(self):
        seed = int(self.seed)
        self.model_name = f"resnet{50 + seed % 7}_v{seed % 3}"
        self.notes = (
            " ".join(WORDS[(seed * 7 + i) % len(WORDS)] for i in range(12)) + f" keyword-{seed}"
        )
        self.config = {"lr": 10 ** -(1 + seed % 4), "batch_size": 32 * (1 + seed % 4)}
        self.next(self.train)

    @step
    def train(self):
        self.accuracy = round(0.5 + ((int(self.seed) * 7919) % 5000) / 10000, 4)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HistoryFlow()
