"""A card whose HTML carries script, as a received ledger's card could: a custom card type
returns it raw, and its id is markup. The script reports to $CARD_BEACON (a local URL) and
tries to reach the page around it; shown safely, none of it runs."""

import os

from ledgerflow import FlowSpec, card, step
from ledgerflow.cards import MetaflowCard, register_card


@register_card
class ScriptCard(MetaflowCard):
    type = "script_card"

    def render(self, task):
        beacon = os.environ.get("CARD_BEACON", "http://127.0.0.1:9/")
        return (
            "<!DOCTYPE html><html><body><h1 id='t'>CARD BODY</h1>"
            f"<script>new Image().src = {beacon!r} + 'script-ran';"
            "document.getElementById('t').textContent = 'SCRIPT RAN';"
            "try { parent.document.body.setAttribute('data-pwned', 'yes'); } catch (e) {"
            f" new Image().src = {beacon!r} + 'parent-blocked'; }}"
            "</script></body></html>"
        )


class ScriptCardFlow(FlowSpec):
    @card(type="script_card", id="<img src=x onerror=alert(1)>")
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ScriptCardFlow()
