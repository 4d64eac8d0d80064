from ledgerflow import FlowSpec, step


class MutationFlow(FlowSpec):
    @step
    def start(self):
        self.shared = {"seen": []}
        self.items = [0, 1, 2, 3]
        self.next(self.touch, foreach="items")

    @step
    def touch(self):
        self.shared["seen"].append(self.input)  # in-place mutation of an inherited artifact
        self.items.append("mine")
        self.seen_here = list(self.shared["seen"])
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen_lists = [inp.seen_here for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MutationFlow()
