import sys

from ledgerflow import Config, FlowSpec, config_expr, parallel, resources, step

CASE = sys.argv.pop(1)


class UnsupportedFlow(FlowSpec):
    if CASE == "config":
        cfg = Config("cfg", default="config.json")

    @step
    def start(self):
        self.next(self.end)

    if CASE == "parallel":

        @parallel
        @step
        def end(self):
            pass
    elif CASE == "config_expr":

        @resources(cpu=config_expr("cfg.cpu"))
        @step
        def end(self):
            pass
    else:

        @step
        def end(self):
            pass


if __name__ == "__main__":
    UnsupportedFlow()
