from ledgerflow import FlowSpec, IncludeFile, step


class IncludeFlow(FlowSpec):
    """Its IncludeFile is stored when the run is created, before any task references it."""

    data = IncludeFile("data", is_text=False, help="Any file")

    @step
    def start(self):
        self.size = len(self.data)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    IncludeFlow()
