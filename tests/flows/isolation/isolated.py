import os
import random
import sys
import time

from ledgerflow import FlowSpec, step

COUNTER = 0  # a module global each task changes


class IsolatedFlow(FlowSpec):
    """Four concurrent tasks that each change process-wide state, then report what they see."""

    @step
    def start(self):
        self.items = [0, 1, 2, 3]
        self.next(self.change, foreach="items")

    @step
    def change(self):
        global COUNTER
        COUNTER += 1
        seen_before = os.environ.get("LF_TEST_VAR")
        os.environ["LF_TEST_VAR"] = str(self.input)
        os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        sys.path.append(f"/nowhere/{self.input}")
        random.seed(self.input)
        time.sleep(0.2)  # overlap with the other tasks
        self.count = COUNTER
        self.env_before = seen_before
        self.env = os.environ["LF_TEST_VAR"]
        self.added_paths = [p for p in sys.path if p.startswith("/nowhere/")]
        self.draw = random.random()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.counts = [i.count for i in inputs]
        self.envs_before = [i.env_before for i in inputs]
        self.envs = [i.env for i in inputs]
        self.paths = [i.added_paths for i in inputs]
        self.draws = [i.draw for i in inputs]
        self.cwd_after = os.getcwd()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    IsolatedFlow()
