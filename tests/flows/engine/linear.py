from ledgerflow import FlowSpec, step


class LinearFlow(FlowSpec):
    @step
    def start(self):
        self.numbers = [1, 2, 3]
        self._scratch = "never stored"
        print("hello from start")
        self.next(self.middle)

    @step
    def middle(self):
        assert not hasattr(self, "_scratch")
        self.total = sum(self.numbers)
        self.next(self.end)

    @step
    def end(self):
        self.doubled = self.total * 2
        print(f"total={self.total}")


if __name__ == "__main__":
    LinearFlow()
