from ledgerflow import FlowSpec, step


class UnknownTargetFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UnknownTargetFlow()
