from ledgerflow import FlowSpec, current, step


class CurrentTaskFlow(FlowSpec):
    @step
    def start(self):
        task = current.task
        task_run_tags = sorted(task.parent.parent.user_tags)
        self.seen = (task.pathspec, task.id, task_run_tags)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CurrentTaskFlow()
