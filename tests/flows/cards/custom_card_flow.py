"""A custom card type with Metaflow's MetaflowCard interface, registered with
register_card: it reads the task's artifacts (set in the step and inherited), its options,
and the components the step appended (ALLOW_USER_COMPONENTS)."""

import html

from ledgerflow import FlowSpec, card, current, step
from ledgerflow.cards import Markdown, MetaflowCard, register_card


@register_card
class ReportCard(MetaflowCard):
    type = "report_card"
    ALLOW_USER_COMPONENTS = True

    def __init__(self, options={}, components=[], graph=None, **kwargs):  # noqa: B006 - as Metaflow
        self.title = options.get("title", "Report")
        self.components = components
        self.steps = sorted(graph["steps"]) if graph else []

    def render(self, task):
        return (
            f"<html><body><h1>{html.escape(self.title)}</h1>"
            f"<p>accuracy={task.data.accuracy}</p><p>note={task['note'].data}</p>"
            f"<p>at {task.pathspec} step {task.step_name}</p><p>steps {self.steps}</p>"
            f"{''.join(self.components)}</body></html>"
        )


class CustomCardFlow(FlowSpec):
    @card(type="report_card", options={"title": "Weekly report"})
    @step
    def start(self):
        self.accuracy = 0.93
        self.note = "kept"
        current.card.append(Markdown("**appended**"))
        self.next(self.end)

    @card(type="not_registered")
    @card(type="report_card")
    @step
    def end(self):
        self.note = "changed"


if __name__ == "__main__":
    CustomCardFlow()
