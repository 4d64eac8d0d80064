"""Records what a Dask worker's process sees, then tries the Client API there (which would
open the ledger): @catch keeps the error."""

import os

from ledgerflow import Flow, FlowSpec, catch, current, step


class PeekFlow(FlowSpec):
    @step
    def start(self):
        self.cwd = os.getcwd()
        self.pid = os.getpid()
        self.forbid = os.environ.get("LEDGERFLOW_FORBID_LEDGER")
        self.files_here = sorted(os.listdir("."))
        self.next(self.peek)

    @catch(var="peek_error")
    @step
    def peek(self):
        self.latest = Flow(current.flow_name).latest_run.id
        self.next(self.end)

    @step
    def end(self):
        self.error_text = str(self.peek_error.exception) if self.peek_error else None


if __name__ == "__main__":
    PeekFlow()
