from ledgerflow import FlowSpec, step


class FailingFlow(FlowSpec):
    @step
    def start(self):
        self.before = "kept"
        self.next(self.boom)

    @step
    def boom(self):
        self.partial = 42
        print("about to fail")
        raise ValueError("the step broke on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingFlow()
