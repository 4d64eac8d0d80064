"""Stores a value whose unpickling appends to the file named by $EVIL_MARKER: the UI and
the card code must never unpickle it while browsing."""

import os

from ledgerflow import FlowSpec, card, current, step
from ledgerflow.cards import Markdown


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo X >> {self.marker}",))


class EvilFlow(FlowSpec):
    @card
    @step
    def start(self):
        self.evil = Evil(os.environ["EVIL_MARKER"])
        self.plain = {"safe": [1, 2, 3]}
        current.card.append(Markdown("# Evil report <script>alert(1)</script>"))
        print("a log line <img src=x onerror=alert(1)>")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    EvilFlow()
