from ledgerflow import FlowSpec, Flow, step, namespace


class ReaderFlow(FlowSpec):
    @step
    def start(self):
        namespace(None)
        self.stats = Flow("ArtifactExample").latest_successful_run.data.accuracy
        self.next(self.end)

    @step
    def end(self):
        print("read", self.stats)


if __name__ == "__main__":
    ReaderFlow()
