from ledgerflow import (
    FlowSpec,
    MetaflowException,
    MissingInMergeArtifactsException,
    UnhandledInMergeArtifactsException,
    step,
)


class MergeRulesFlow(FlowSpec):
    @step
    def start(self):
        self.shared = 1
        self.conflict = "x"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.conflict = "A"
        self.only_a = "a"
        self.tmp = "ta"
        self.next(self.join)

    @step
    def b(self):
        self.conflict = "B"
        self.only_b = "b"
        self.tmp = "tb"
        self.next(self.join)

    @step
    def join(self, inputs):
        outcomes = {}
        try:
            self.merge_artifacts(inputs)
        except UnhandledInMergeArtifactsException as e:
            outcomes["unhandled"] = sorted(e.artifact_names)
        outcomes["set_after_failed_merge"] = hasattr(self, "only_a") or hasattr(self, "shared")
        try:
            self.merge_artifacts(inputs, include=["only_a", "nope"])
        except MissingInMergeArtifactsException as e:
            outcomes["missing"] = e.artifact_names
        try:
            self.merge_artifacts(inputs, include=["only_a"], exclude=["tmp"])
        except MetaflowException as e:
            outcomes["both"] = str(e)
        self.conflict = "join wins"
        self.merge_artifacts(inputs, exclude=["tmp"])
        outcomes["tmp_merged"] = hasattr(self, "tmp")
        self.outcomes = outcomes
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MergeRulesFlow()
