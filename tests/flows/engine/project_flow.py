from ledgerflow import FlowSpec, Parameter, current, project, step


@project(name="demo")
class ProjFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        print(
            current.parameter_names,
            current.project_name,
            current.branch_name,
            current.project_flow_name,
            current.is_production,
        )
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjFlow()
