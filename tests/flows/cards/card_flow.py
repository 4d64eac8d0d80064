"""Cards of every kind: the default card with components, a blank card by id, a card
that fails to render, and a step whose components go to two cards."""

from ledgerflow import FlowSpec, Parameter, card, current, step
from ledgerflow.cards import Artifact, Error, Image, Markdown, ProgressBar, Table, VegaChart

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101007a7b8c9c0000000049454e44ae426082"
)


class BrokenComponent(Markdown):
    def render(self):
        raise RuntimeError("this component is broken")


class CardFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @card
    @step
    def start(self):
        self.scores = {"a": 1, "b": 2}
        self.note = "ledger <b>cards</b>"
        current.card.append(Markdown("# Training report\n\nAccuracy is **0.93**"))
        current.card.append(Table([[1, "x"], [2, "y"]], headers=["n", "letter"]))
        current.card.append(Image(PNG, label="one pixel"))
        current.card.append(Artifact({"k": [1, 2, 3]}, name="a dict"))
        bar = ProgressBar(max=10, label="epochs")
        current.card.append(bar)
        bar.update(10)
        current.card.append(
            VegaChart(
                {
                    "mark": "bar",
                    "data": {"values": [{"x": "a", "y": 3}, {"x": "b", "y": 5}]},
                    "encoding": {"x": {"field": "x"}, "y": {"field": "y"}},
                }
            )
        )
        current.card.append(Error(ValueError("bad thing"), "caught it"))
        current.card.append(BrokenComponent("x"))
        self.next(self.two)

    @card(type="blank", id="summary")
    @card(id="details", customize=True)
    @step
    def two(self):
        current.card["summary"].append(Markdown("## Summary card"))
        current.card["details"].append(Markdown("details text"))
        current.card.append(
            Markdown("goes to details: customize=True makes it the default editable card")
        )
        self.next(self.end)

    @card(type="nonexistent")
    @step
    def end(self):
        print("done")


if __name__ == "__main__":
    CardFlow()
