from ledgerflow import FlowSpec, step


class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.shared = {"key": "value"}
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "L"
        self.next(self.left_more)

    @step
    def left_more(self):
        self.left_value = 1
        self.next(self.join)

    @step
    def right(self):
        self.side = "R"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.by_name = [inputs.left_more.side, inputs.right.side]
        self.count = len(inputs)
        self.side = "joined"
        self.merge_artifacts(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BranchFlow()
