import hashlib
import os
import resource

from ledgerflow import FlowSpec, Parameter, step


class HugeFlow(FlowSpec):
    mb = Parameter("mb", default=1536)

    @step
    def start(self):
        block = os.urandom(1024 * 1024)
        self.big = block * int(self.mb)
        self.digest = hashlib.sha256(self.big).hexdigest()
        self.rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.next(self.end)

    @step
    def end(self):
        self.ok = hashlib.sha256(self.big).hexdigest() == self.digest
        self.length = len(self.big)
        self.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    HugeFlow()
