"""Is the process that ran a run still there? Runs record their host and pid; a run left
'running' by a process that is gone (same host, no such pid) crashed."""

from __future__ import annotations

import os
import socket


def process_gone(host: str | None, pid: int | None) -> bool:
    """True only when we can tell for sure: same host and no such process.

    (A pid reused by an unrelated process reads as alive: such a run is only marked
    crashed once that process is gone too.)"""
    if pid is None or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists but belongs to someone else
        return False
    return False
