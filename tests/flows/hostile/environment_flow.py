import os

from ledgerflow import FlowSpec, step


class EnvironmentFlow(FlowSpec):
    """The process environment kept whole (no variable named like a credential in it), and
    JWTs whose signature is short or empty."""

    @step
    def start(self):
        self.env = dict(os.environ)
        self.short_jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
        self.unsigned_jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
        self.labels = {"PATH": "a label", "name": "not an environment"}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    EnvironmentFlow()
