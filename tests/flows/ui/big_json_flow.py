"""One large JSON-encoded artifact (12 MB of text that compresses to a few KB): what a
forged `size` claim must not make the UI decode (tests/test_ui.py)."""

from ledgerflow import FlowSpec, step


class BigJsonFlow(FlowSpec):
    @step
    def start(self):
        self.big = "a" * 12_000_000
        self.small = {"rows": [{"x": 1, "y": "one"}, {"x": 2, "y": "two"}], "shape": [2, 2]}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BigJsonFlow()
