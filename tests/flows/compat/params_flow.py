"""Parameters as Metaflow code writes them: separator=, deploy-time defaults, IncludeFile."""

from ledgerflow import FlowSpec, IncludeFile, Parameter, current, project, step


def who(ctx):
    return f"{ctx.flow_name}:{ctx.parameter_name}:{current.project_name}"


@project(name="compat")
class ParamsFlow(FlowSpec):
    req = Parameter("req", default="a,b", separator=",")
    origin = Parameter("origin", default=who)
    count = Parameter("count", default=1)
    notes = IncludeFile("notes", default=None)

    @step
    def start(self):
        self.seen = (self.req, self.origin, self.count, self.notes)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParamsFlow()
