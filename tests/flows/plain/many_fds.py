"""Runs a small flow from a process that holds more than 1,024 open descriptors (a notebook
kernel, a long test session): the fork server must still watch its sockets."""

import os
import resource
import runpy
import sys

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < 2048:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
