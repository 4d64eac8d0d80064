from ledgerflow import FlowSpec, step


class MergeOutsideJoinFlow(FlowSpec):
    @step
    def start(self):
        self.merge_artifacts([])
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MergeOutsideJoinFlow()
