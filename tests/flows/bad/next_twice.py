from ledgerflow import FlowSpec, step


class NextTwiceFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NextTwiceFlow()
