from ledgerflow import FlowSpec, step


class DedupFlow(FlowSpec):
    @step
    def start(self):
        self.big = bytes(range(256)) * (10 * 1024 * 1024 // 256)  # 10 MB
        self.next(self.middle)

    @step
    def middle(self):
        self.size = len(self.big)  # read it, leave it unchanged
        self.next(self.end)

    @step
    def end(self):
        self.same = len(self.big) == self.size


if __name__ == "__main__":
    DedupFlow()
