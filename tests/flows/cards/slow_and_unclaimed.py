"""A card slower than its timeout, components for a card id nobody declared, and a step
appending to current.card without any @card: none of it fails a task."""

import time

from ledgerflow import FlowSpec, card, current, step
from ledgerflow.cards import Markdown


class Slow(Markdown):
    def render(self):
        time.sleep(5)
        return "never"


class SlowCardFlow(FlowSpec):
    @card(timeout=0.2)
    @step
    def start(self):
        current.card.append(Slow("x"))
        current.card["nobody"].append(Markdown("dropped"))
        self.next(self.end)

    @step
    def end(self):
        current.card.append(Markdown("no card here"))
        self.done = True


if __name__ == "__main__":
    SlowCardFlow()
