from ledgerflow import FlowSpec, IncludeFile, JSONType, Parameter, current, step


class ParamsFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5, help="Learning rate")
    epochs = Parameter("epochs", default=3)
    name_tag = Parameter("name-tag", default="base")
    verbose = Parameter("verbose", default=False, type=bool)
    config = Parameter("config", default='{"layers": [1, 2]}', type=JSONType)
    must = Parameter("must", required=True, type=int)
    notes = IncludeFile("notes", default=None, help="A text file")

    @step
    def start(self):
        self.seen = {
            "alpha": self.alpha,
            "epochs": self.epochs,
            "name_tag": self.name_tag,
            "verbose": self.verbose,
            "config": self.config,
            "must": self.must,
            "notes": self.notes,
        }
        self.info = {
            "flow_name": current.flow_name,
            "run_id": current.run_id,
            "step_name": current.step_name,
            "task_id": current.task_id,
            "pathspec": current.pathspec,
            "retry_count": current.retry_count,
            "is_running_flow": current.is_running_flow,
            "username": current.username,
        }
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.alpha_in_join = self.alpha
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParamsFlow()
