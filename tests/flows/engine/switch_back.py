from ledgerflow import FlowSpec, step


class LoopBackFlow(FlowSpec):
    @step
    def start(self):
        self.count = 0
        self.next(self.body)

    @step
    def body(self):
        self.count += 1
        self.next(self.check)

    @step
    def check(self):
        self.state = "again" if self.count < 3 else "done"
        self.next({"again": self.body, "done": self.end}, condition="state")

    @step
    def end(self):
        print("count", self.count)


if __name__ == "__main__":
    LoopBackFlow()
