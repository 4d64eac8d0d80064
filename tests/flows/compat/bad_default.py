from ledgerflow import FlowSpec, Parameter, step


def broken(ctx):
    return len(5)  # a TypeError inside the function, not a missing ctx


class BadDefaultFlow(FlowSpec):
    x = Parameter("x", default=broken)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BadDefaultFlow()
