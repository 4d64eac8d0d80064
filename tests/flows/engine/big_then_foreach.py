import hashlib
import os

from ledgerflow import FlowSpec, step


class BigThenForeachFlow(FlowSpec):
    """12 MB that do not compress (a commit checkpointed in the background), then a foreach:
    under --executor process, worker processes fork while that checkpoint may run."""

    @step
    def start(self):
        self.noise = os.urandom(12 * 1024 * 1024)
        self.digest = hashlib.sha256(self.noise).hexdigest()
        self.items = list(range(4))
        self.next(self.check, foreach="items")

    @step
    def check(self):
        self.ok = hashlib.sha256(self.noise).hexdigest() == self.digest
        self.next(self.join)

    @step
    def join(self, inputs):
        self.all_ok = all(i.ok for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BigThenForeachFlow()
