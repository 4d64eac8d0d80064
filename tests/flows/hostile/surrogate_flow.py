import os

from ledgerflow import FlowSpec, step


class SurrogateFlow(FlowSpec):
    """Values holding lone surrogates: what os.fsdecode gives for a non-UTF-8 file name."""

    @step
    def start(self):
        self.file_name = os.fsdecode(b"report-\xff.csv")  # 'report-\udcff.csv'
        self.names = ["ok", "\ud800abc"]
        self.next(self.end)

    @step
    def end(self):
        print(len(self.file_name))


if __name__ == "__main__":
    SurrogateFlow()
