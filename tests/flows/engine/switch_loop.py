from ledgerflow import FlowSpec, step


class SwitchLoopFlow(FlowSpec):
    @step
    def start(self):
        self.count = 0
        self.next(self.body)

    @step
    def body(self):
        self.count += 1
        self.state = "again" if self.count < 3 else "done"
        self.next({"again": self.body, "done": self.finish}, condition="state")

    @step
    def finish(self):
        self.mode = "fast" if self.count >= 3 else "slow"
        self.next({"fast": self.fast, "slow": self.slow}, condition="mode")

    @step
    def fast(self):
        self.path = "fast"
        self.next(self.end)

    @step
    def slow(self):
        self.path = "slow"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchLoopFlow()
