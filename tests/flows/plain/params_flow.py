"""A flow with one parameter of each kind, for the plain `run` parser's tests."""

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
        # What the run's process had loaded by now (threads share it): the plain parser
        # must have kept click and peewee out.
        self.loaded = sorted(m for m in ("click", "peewee") if m in sys.modules)
        self.seen = json.dumps([self.count, self.rate, self.label, self.config, self.verbose,
                                self.dash_name])
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParamsFlow()
