"""Issue 27's behaviours in one run, written as for Metaflow: the same file with
`from metaflow import ...` was run under Metaflow 2.19.39 to compare
(tests/test_compat_round3.py says what Metaflow did for each)."""

import os
import signal

from ledgerflow import FlowSpec, catch, current, retry, secrets, step

INLINE = [
    {
        "type": "inline",
        "id": "1",
        "options": {
            "env_vars": {"secret_1": "Pizza is a vegetable.", "SECRET_2": "How do eels reproduce?"}
        },
    }
]
NODE_FIELDS = (
    "parallel_step",
    "num_parallel",
    "parallel_foreach",
    "is_start_step",
    "is_end_step",
    "wrappers",
    "config_decorators",
    "node_info",
)


class Round3Flow(FlowSpec):
    int_const = 123
    str_const = "this is a constant"
    tuple_const = (1, 2)

    @step
    def start(self):
        try:
            self.int_const = 5
            self.assign_error = None
        except AttributeError as e:
            self.assign_error = str(e)
        self.tags_type = type(current.tags).__name__
        current.tags.add("added_in_step")
        current.tags.update(["also_added"])
        self.tags_seen = sorted(current.tags)
        node = self._graph["start"]
        self.node_fields = {name: getattr(node, name) for name in NODE_FIELDS}
        self.flaky_decorators = [d.name for d in self._graph["flaky"].decorators]
        self.items = ["a", "b"]
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        if current.retry_count < 2:
            raise ValueError(f"attempt {current.retry_count} fails")
        self.next(self.each, foreach="items")

    @catch(var="failure")
    @step
    def each(self):
        self.stack_in_step = [tuple(frame) for frame in self._foreach_stack]
        if self.input == "a":
            raise ZeroDivisionError("boom")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.killed)

    @catch(var="killed_failure", print_exception=False)
    @retry(times=1, minutes_between_retries=0)
    @step
    def killed(self):
        os.kill(os.getpid(), signal.SIGKILL)
        self.next(self.segfault)

    @catch(var="segfault_failure")
    @step
    def segfault(self):
        import ctypes

        print("Crash and burn!")
        ctypes.string_at(0)
        self.next(self.secret_step)

    @secrets(sources=INLINE)
    @step
    def secret_step(self):
        self.secrets_seen = [os.environ.get("secret_1"), os.environ.get("SECRET_2")]
        self.next(self.end)

    @step
    def end(self):
        self.secret_after = os.environ.get("secret_1")


if __name__ == "__main__":
    Round3Flow()
