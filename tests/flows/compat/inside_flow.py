"""What Metaflow code reads inside a step: current.run/.task, self._current_step,
self._graph, and AttributeError when assigning a Parameter."""

from ledgerflow import FlowSpec, Parameter, batch, conda, current, kubernetes, pypi, retry, step


class InsideFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @kubernetes(cpu=2)
    @step
    def start(self):
        try:
            self.alpha = 5
        except AttributeError as e:
            self.assign_error = type(e).__name__
        self.step_seen = self._current_step
        self.next_seen = list(self._graph[self._current_step].out_funcs)
        run = current.run
        run.add_tag("seen-from-inside")
        self.run_pathspec = run.pathspec
        self.run_tags = sorted(run.user_tags)
        print("hello from start")
        print("second line")
        self.next(self.middle)

    @retry(times=2, minutes_between_retries=0)
    @pypi(packages={"surely-not-installed-pkg": "1.0", "click": ""})
    @step
    def middle(self):
        self.attempt_value = current.retry_count
        print(f"attempt {current.retry_count}")
        if current.retry_count < 1:
            raise RuntimeError("first attempt fails")
        self.next(self.end)

    @batch(memory=100)
    @conda(packages={"numpy": "1.0"})
    @step
    def end(self):
        pass


if __name__ == "__main__":
    InsideFlow()
