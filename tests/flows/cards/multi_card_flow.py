"""Several @card on one step, as Metaflow allows them: two without ids, a default plus a
blank with an id, and two sharing an id (warned about, both rendered). Runs unchanged under
Metaflow 2.19.39 with the import switched (tests/test_cards_multi.py compares)."""

from ledgerflow import FlowSpec, card, current, step
from ledgerflow.cards import Markdown


class MultiCardFlow(FlowSpec):
    @card
    @card
    @step
    def start(self):
        self.x = 1
        self.next(self.middle)

    @card(type="blank", id="x")
    @card(type="default")
    @step
    def middle(self):
        current.card.append(Markdown("to the default card"))
        current.card["x"].append(Markdown("to the blank card"))
        self.next(self.end)

    @card(id="d", type="blank")
    @card(id="d")
    @step
    def end(self):
        pass


if __name__ == "__main__":
    MultiCardFlow()
