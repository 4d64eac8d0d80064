import ctypes
import os
import threading
import time

from ledgerflow import FlowSpec, Parameter, step


class MisbehavingFlow(FlowSpec):
    """Tasks that crash, exit, fork, spin or leave a daemon thread behind; `--how` picks one."""

    how = Parameter("how", default="segfault")

    @step
    def start(self):
        self.items = ["fine", self.how, "fine"]
        self.next(self.act, foreach="items")

    @step
    def act(self):
        print(f"acting: {self.input}", flush=True)
        if self.input == "segfault":
            ctypes.string_at(0)
        elif self.input == "exit":
            os._exit(3)
        elif self.input == "interrupt":
            raise KeyboardInterrupt
        elif self.input == "fork":
            os.fork()  # both processes come back here and go on as the task
        elif self.input == "thread":  # (a non-daemon one is waited for: leftovers.py)
            threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()  # forever
        self.done = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.done = sorted(i.done for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MisbehavingFlow()
