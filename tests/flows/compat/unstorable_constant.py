"""A class-level attribute that cannot be stored: Metaflow stores class attributes as
artifacts and refuses the run at its start ("Cannot pickle dump artifact named lock")."""

import threading

from ledgerflow import FlowSpec, step


class UnstorableFlow(FlowSpec):
    lock = threading.Lock()

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UnstorableFlow()
