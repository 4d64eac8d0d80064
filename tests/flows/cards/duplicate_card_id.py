"""Broken: two @card with the same id on one step."""

from ledgerflow import FlowSpec, card, step


class DuplicateCardFlow(FlowSpec):
    @card(id="x")
    @card(id="x", type="blank")
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DuplicateCardFlow()
