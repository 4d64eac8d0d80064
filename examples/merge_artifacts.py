"""Artifact merging: merge_artifacts() combines artifacts from parallel branches."""

from ledgerflow import FlowSpec, step


class MergeArtifactsFlow(FlowSpec):
    @step
    def start(self):
        self.shared_config = {"key": "value"}
        self.next(self.branch_a, self.branch_b)

    @step
    def branch_a(self):
        self.result_a = "from A"
        self.next(self.join)

    @step
    def branch_b(self):
        self.result_b = "from B"
        self.next(self.join)

    @step
    def join(self, inputs):
        # Automatically merges non-conflicting artifacts
        self.merge_artifacts(inputs)
        # Now you have:
        # - self.shared_config (same in both branches)
        # - self.result_a (from branch_a)
        # - self.result_b (from branch_b)
        self.next(self.end)

    @step
    def end(self):
        print(self.shared_config, self.result_a, self.result_b)


if __name__ == "__main__":
    MergeArtifactsFlow()
