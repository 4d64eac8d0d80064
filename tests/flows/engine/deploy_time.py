from ledgerflow import FlowSpec, Parameter, step


class DeployFlow(FlowSpec):
    who = Parameter("who", default=lambda ctx: f"hi {ctx.parameter_name}")
    n = Parameter("n", default=lambda: 5, type=int)

    @step
    def start(self):
        print(self.who, self.n)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeployFlow()
