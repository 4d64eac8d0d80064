from ledgerflow import FlowSpec, catch, step, timeout


class SpinFlow(FlowSpec):
    """A busy loop that only a timeout can stop."""

    @catch(var="failure")
    @timeout(seconds=1)
    @step
    def start(self):
        print("spinning", flush=True)
        while True:
            pass
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SpinFlow()
