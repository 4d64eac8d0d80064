from ledgerflow import FlowSpec, step


class ForeachMissingAttrFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.work, foreach="nothing_here")

    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachMissingAttrFlow()
