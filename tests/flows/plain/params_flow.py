"""A flow with one parameter of each kind, for the tests of what a `run` loads."""

import json
import sys

from ledgerflow import FlowSpec, IncludeFile, JSONType, Parameter, step


class ParamsFlow(FlowSpec):
    count = Parameter("count", default=5)
    rate = Parameter("rate", default=0.5)
    label = Parameter("label", default="x")
    config = Parameter("config", type=JSONType, default='{"a": 1}')
    verbose = Parameter("verbose", default=False)
    notes = IncludeFile("notes", default=None)
    dash_name = Parameter("dash-name", default="d")

    @step
    def start(self):
        # What the run's process had loaded by now (threads share it): a run needs neither
        # peewee nor the flow command's rarer commands (loaded on first use).
        self.loaded = sorted(
            m
            for m in ("peewee", "ledgerflow.cli.flow_inspect", "ledgerflow.cli.card_cmds")
            if m in sys.modules
        )
        self.seen = json.dumps(
            [self.count, self.rate, self.label, self.config, self.verbose, self.dash_name]
        )
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParamsFlow()
