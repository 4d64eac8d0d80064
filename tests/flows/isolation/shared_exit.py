import atexit
import logging
import logging.handlers
import os
import sys
import tempfile

from ledgerflow import FlowSpec, step

# Made once by the run's process, which every task is forked from: its clean-up at exit is
# the run's, not each task's (a task running it would delete the folder under the others).
SHARED = tempfile.TemporaryDirectory()
atexit.register(print, "the run's exit handler")
# A buffering handler configured at import: what a step logs through it is flushed as the
# task ends, as logging's exit handler does in a Metaflow task.
_target = logging.StreamHandler(sys.stdout)
_handler = logging.handlers.MemoryHandler(100, target=_target)
logger = logging.getLogger("shared_exit")
logger.addHandler(_handler)
logger.setLevel(logging.INFO)


class SharedExitFlow(FlowSpec):
    @step
    def start(self):
        self.folder = SHARED.name
        self.items = [0, 1, 2]
        self.next(self.write, foreach="items")

    @step
    def write(self):
        with open(os.path.join(SHARED.name, str(self.input)), "w") as f:
            f.write("written")
        logger.info("logged by %s", self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.files = sorted(os.listdir(SHARED.name))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SharedExitFlow()
