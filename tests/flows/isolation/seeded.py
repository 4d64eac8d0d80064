"""Module-level seeding, as ML code does it: under Metaflow every task re-imports the module,
so every task starts from the seeded state. LF_TEST_ORDER=late imports ledgerflow before
random and numpy (numpy 2 then loads numpy.random at the seed call); otherwise they come
first, numpy.random loaded at module level as sklearn and friends do."""

# ruff: noqa: I001, F401 - the import order is what the tests vary
import os

if os.environ.get("LF_TEST_ORDER") == "late":
    from ledgerflow import FlowSpec, step
    import random
    import numpy as np
else:
    import random
    import numpy as np
    import numpy.random
    from ledgerflow import FlowSpec, step

if os.environ.get("LF_TEST_SEED"):
    random.seed(int(os.environ["LF_TEST_SEED"]))
    np.random.seed(int(os.environ["LF_TEST_SEED"]))


class SeededFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2, 3]
        self.next(self.draw, foreach="items")

    @step
    def draw(self):
        self.py = random.random()
        self.np = float(np.random.rand())
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pys = [i.py for i in inputs]
        self.nps = [i.np for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SeededFlow()
