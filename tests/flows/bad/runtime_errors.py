import threading

from ledgerflow import FlowSpec, Parameter, step


class RuntimeErrorsFlow(FlowSpec):
    """One flow, many ways to fail at run time, chosen with --case."""

    case = Parameter("case", default="none")

    @step
    def start(self):
        case = self.case
        if case == "not_iterable":
            self.items = 42
        elif case == "empty":
            self.items = []
        elif case == "too_wide":
            self.items = list(range(150))
        else:
            self.items = [1, 2]
        if case == "unpicklable":
            self.lock = threading.Lock()
        if case == "reserved":
            self.input = 3
        if case == "set_param":
            self.case = "other"
        if case == "switch":
            self.mode = "sideways"
        self.mode = getattr(self, "mode", "ok")
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.value = self.input if self.case != "conflict" else None
        self.same = "x" if self.case != "conflict" else self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.merge_artifacts(inputs, exclude=["value"])
        self.next(self.route)

    @step
    def route(self):
        self.choice = self.mode if self.case == "switch" else "ok"
        self.next({"ok": self.end, "other": self.alt}, condition="choice")

    @step
    def alt(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RuntimeErrorsFlow()
