import atexit
import concurrent.futures
import logging
import logging.handlers
import os
import sys
import tempfile
import threading
import time

from ledgerflow import FlowSpec, Parameter, step

# A thread of the module's own, started before the tasks are forked: counted in their copy of
# the interpreter though it does not run there, it must not hide the ones a step leaves.
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()


def _write_later(path: str, text: str, seconds: float) -> None:
    time.sleep(seconds)
    with open(path, "w") as f:
        f.write(text)
    print(f"left: {text}", flush=True)


class LeftoversFlow(FlowSpec):
    """Steps that leave work for their process's exit, as Metaflow's tasks may: a Python
    process's exit finishes it, and the task ends after it."""

    folder = Parameter("folder", default="")

    @step
    def start(self):
        self.items = ["thread", "pool", "atexit", "logging", "finalize"]
        self.next(self.leave, foreach="items")

    @step
    def leave(self):
        path = os.path.join(self.folder, self.input)
        if self.input == "thread":  # a non-daemon thread still running
            threading.Thread(target=_write_later, args=(path, "thread", 0.3)).start()
        elif self.input == "pool":  # work a pool was given and never shut down
            pool = concurrent.futures.ThreadPoolExecutor(1)
            pool.submit(_write_later, path, "pool", 0.3)
        elif self.input == "atexit":
            atexit.register(_write_later, path, "atexit", 0.0)
        elif self.input == "logging":  # records a handler holds until logging.shutdown
            target = logging.StreamHandler(sys.stdout)
            handler = logging.handlers.MemoryHandler(100, target=target)
            logger = logging.getLogger("leftovers")
            logger.addHandler(handler)
            logger.warning("left: logging")
        elif self.input == "finalize":  # a temporary directory its finalizer removes at exit
            kept = tempfile.TemporaryDirectory(dir=self.folder)
            globals()["_kept"] = kept  # alive until the process ends
            self.tmp = kept.name
        self.next(self.join)

    @step
    def join(self, inputs):
        # Each task ended after what it left: what they wrote is all here before this starts.
        self.found = {}
        for name in ("thread", "pool", "atexit"):
            with open(os.path.join(self.folder, name)) as f:
                self.found[name] = f.read()
        self.tmp_left = [i.tmp for i in inputs if hasattr(i, "tmp") and os.path.exists(i.tmp)]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LeftoversFlow()
