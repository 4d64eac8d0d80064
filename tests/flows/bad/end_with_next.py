from ledgerflow import FlowSpec, step


class EndWithNextFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.next(self.start)


if __name__ == "__main__":
    EndWithNextFlow()
