"""Defaults go through their parameter's type, as click (and so Metaflow) converts them."""

from ledgerflow import FlowSpec, Parameter, step


class TypedDefaults(FlowSpec):
    count = Parameter("count", default="5", type=int)
    ratio = Parameter("ratio", default=1, type=float)
    label = Parameter("label", default=7, type=str)
    flag = Parameter("flag", default="true", type=bool)
    bad = Parameter("bad", default="x", type=int, required=False)

    @step
    def start(self):
        self.seen = (self.count, self.ratio, self.label, self.flag)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TypedDefaults()
