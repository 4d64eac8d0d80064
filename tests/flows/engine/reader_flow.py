from ledgerflow import Flow, FlowSpec, namespace, step


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
