"""Selective merging: merge_artifacts(include=...) and merge_artifacts(exclude=...)."""

from ledgerflow import FlowSpec, step


class SelectiveMergeFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.branch_a, self.branch_b)

    @step
    def branch_a(self):
        self.result_a = "from A"
        self.temporary_data = "scratch A"
        self.next(self.join)

    @step
    def branch_b(self):
        self.result_b = "from B"
        self.temporary_data = "scratch B"
        self.next(self.join)

    @step
    def join(self, inputs):
        # Only merge specific artifacts
        self.merge_artifacts(inputs, include=["result_a", "result_b"])
        self.next(self.fan_out)

    @step
    def fan_out(self):
        self.next(self.branch_c, self.branch_d)

    @step
    def branch_c(self):
        self.result_c = "from C"
        self.temporary_data = "scratch C"
        self.next(self.join_again)

    @step
    def branch_d(self):
        self.temporary_data = "scratch D"
        self.next(self.join_again)

    @step
    def join_again(self, inputs):
        # Or exclude specific artifacts
        self.merge_artifacts(inputs, exclude=["temporary_data"])
        self.next(self.end)

    @step
    def end(self):
        print(self.result_a, self.result_b, self.result_c)


if __name__ == "__main__":
    SelectiveMergeFlow()
