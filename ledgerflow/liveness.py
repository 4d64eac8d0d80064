"""Is the process that ran a run still there? Runs record their host and pid, and beat a
heartbeat (run.heartbeat_at) every HEARTBEAT_EVERY seconds while running. A run left
'running' crashed if, on this host, its process is gone, or, seen from another host (a ledger
copied or exported mid-run), its heartbeat is older than STALE_AFTER (or claims to be further
in the future). Runs copied in by import/export are never live (upkeep._running)."""

from __future__ import annotations

import os
from datetime import UTC


def hostname() -> str:
    """This machine's name, as socket.gethostname() gives it (without importing socket)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def process_gone(host: str | None, pid: int | None) -> bool:
    """True only when we can tell for sure: same host and no such process.

    (A pid reused by an unrelated process reads as alive: such a run is only marked
    crashed once that process is gone too.)"""
    if pid is None or host != hostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists but belongs to someone else
        return False
    return False


HEARTBEAT_EVERY = 30.0  # seconds between a running run's heartbeats
STALE_AFTER = 600.0  # seconds without a heartbeat after which another host's run is dead


def run_is_dead(host: str | None, pid: int | None, heartbeat_at: str | None) -> bool:
    """True when a run marked 'running' can no longer be running."""
    if host == hostname():
        return process_gone(host, pid)
    if not heartbeat_at:
        return False
    from datetime import datetime

    try:
        beat = datetime.strptime(heartbeat_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    age = (datetime.now(UTC) - beat).total_seconds()
    # A heartbeat from the future (a clock far ahead, or a forged row in a file from
    # elsewhere) is no sign of life: beyond the same horizon either way, the run is dead.
    return abs(age) > STALE_AFTER
