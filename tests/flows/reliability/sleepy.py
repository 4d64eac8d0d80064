import time

from ledgerflow import FlowSpec, Parameter, step


class SleepyFlow(FlowSpec):
    seconds = Parameter("seconds", default=60.0)

    @step
    def start(self):
        self.items = [0, 1, 2, 3]
        self.next(self.nap, foreach="items")

    @step
    def nap(self):
        print(f"napping {self.input}", flush=True)
        deadline = time.time() + float(self.seconds)
        while time.time() < deadline:
            time.sleep(0.05)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SleepyFlow()
