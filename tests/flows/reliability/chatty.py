import os
import threading

from ledgerflow import FlowSpec, current, step


class ChattyFlow(FlowSpec):
    """64 tasks at once, each printing and setting its own values."""

    @step
    def start(self):
        self.items = list(range(64))
        self.barrier_parties = 16
        self.next(self.talk, foreach="items")

    @step
    def talk(self):
        for i in range(20):
            print(f"task {self.input} line {i}")
        self.me = self.input
        self.seen_task_id = current.task_id
        self.seen_pathspec = current.pathspec
        self.thread = threading.current_thread().name
        self.pid = os.getpid()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.mes = [i.me for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ChattyFlow()
