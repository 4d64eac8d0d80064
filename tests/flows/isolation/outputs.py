import logging
import os
import subprocess
import sys
import threading

from ledgerflow import FlowSpec, step


class OutputsFlow(FlowSpec):
    """Output from every place a step can write it."""

    @step
    def start(self):
        print("from print")
        print("to stderr", file=sys.stderr)
        worker = threading.Thread(target=lambda: print("from a thread of the step"))
        worker.start()
        worker.join()
        subprocess.run(["echo", "from a subprocess"], check=True)
        os.write(1, b"from os.write on fd 1\n")
        os.write(2, b"from os.write on fd 2\n")
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        logging.getLogger("mine").info("from logging")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OutputsFlow()
