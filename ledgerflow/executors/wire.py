"""How the runtime and a task's process talk: length-prefixed frames on a socket, and the
OS facts a task's process needs (dying with its parent, its own stdout/stderr)."""

from __future__ import annotations

import io
import os
import pickle
import signal
import socket
import struct
import sys
from typing import Any

_HEADER = 8  # bytes of big-endian length before each frame
# A message on the fork server's control socket: kind (one byte), task key, value.
CONTROL = struct.Struct(">cqq")


def pickled_frame(obj: object) -> memoryview:
    """A frame holding obj pickled, built in one buffer (a join's spec can be megabytes:
    no second copy to prepend the header)."""
    out = io.BytesIO()
    out.write(bytes(_HEADER))
    pickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
    view = out.getbuffer()
    view[:_HEADER] = (len(view) - _HEADER).to_bytes(_HEADER, "big")
    return view


def framed(data: bytes) -> bytes:
    """data as one frame: its length, then itself."""
    return len(data).to_bytes(_HEADER, "big") + data


def send_frame(sock: socket.socket | int, data: bytes) -> None:
    """One frame, header and body in one call (the reader then wakes once for a small one).
    `sock` is a socket or its descriptor (a task's process uses the bare descriptor: no
    socket object to make, a few dozen page faults fewer)."""
    fd = sock if type(sock) is int else sock.fileno()  # type: ignore[union-attr]
    header = len(data).to_bytes(_HEADER, "big")
    sent = os.writev(fd, [header, data])
    while sent < _HEADER:
        sent += os.write(fd, header[sent:])
    view = memoryview(data)[sent - _HEADER :]
    while view:
        view = view[os.write(fd, view) :]


def recv_frame(sock: socket.socket | int) -> bytes | None:
    """One whole frame (blocking), or None if the peer closed first. A small frame (a
    task's spec) usually comes whole in the first read. `sock`: a socket or its descriptor."""
    fd = sock if type(sock) is int else sock.fileno()  # type: ignore[union-attr]
    first = os.read(fd, 65536)
    if len(first) >= _HEADER:
        size = int.from_bytes(first[:_HEADER], "big")
        if len(first) == _HEADER + size:
            return first[_HEADER:]
    if not first:
        return None
    return _rest_of_frame(fd, first)


def recv_frame_into(fd: int, buf: bytearray) -> bytes | memoryview | None:
    """recv_frame for a task's process, on a buffer the fork server made once: a frame that
    arrives whole and fits is read into `buf` in one system call and returned as a view of
    it (recv_frame's 64 KB read allocates a buffer and shrinks it, in memory the task shares
    with the server: measured, ~7 page faults a task). A longer one reads on as recv_frame
    does."""
    view = memoryview(buf)
    got = os.readv(fd, [view])
    if got >= _HEADER:
        size = int.from_bytes(view[:_HEADER], "big")
        if got == _HEADER + size:
            return view[_HEADER:got]
    if not got:
        return None
    return _rest_of_frame(fd, bytes(view[:got]))


def _rest_of_frame(fd: int, first: bytes) -> bytes | None:
    """The frame whose first bytes are `first` (read already), read whole."""
    head = first[:_HEADER]
    if len(head) < _HEADER:
        rest = _recv_exactly(fd, _HEADER - len(head))
        if rest is None:
            return None
        head += rest
    size = int.from_bytes(head, "big")
    body = first[_HEADER:]
    if len(body) >= size:
        return body[:size]  # (one frame is sent on the socket: nothing follows it)
    rest = _recv_exactly(fd, size - len(body))
    return None if rest is None else body + rest


def _recv_exactly(fd: int, n: int) -> bytes | None:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            return None
        got += k
    return bytes(buf)


class FrameReader:
    """Collects one frame from chunks as they arrive (non-blocking reads)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> bytes | None:
        """The frame once complete, else None."""
        self._buf += chunk
        if len(self._buf) < _HEADER:
            return None
        size = int.from_bytes(self._buf[:_HEADER], "big")
        if len(self._buf) < _HEADER + size:
            return None
        return bytes(self._buf[_HEADER : _HEADER + size])


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux), so a run killed
    with kill -9 takes its fork server and tasks with it. Elsewhere the fork server sees its
    control socket close and kills its tasks itself."""
    call = _PRCTL[0] if _PRCTL else prctl()
    if call is None:
        return
    parent = _getppid()
    call(_PR_SET_PDEATHSIG, _SIGKILL)
    if _getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


# Plain ints (signal.SIGKILL is an enum member: a Python-level conversion on each call).
_PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)
_PRCTL: list[Any] = []
_getppid = os.getppid  # (a global: no look-up through the module in each task)


def prctl() -> Any:
    """libc's prctl on Linux, else None. Looked up once (the fork server's tasks inherit
    it), and called with plain ints and no argument types: ctypes passes an int as a C int
    (sign-extended to a register's width by libffi, which prctl reads as unsigned long), and
    declared types would run each argument through its type's from_param (measured: ~40 page
    faults a task)."""
    if not _PRCTL:
        if sys.platform.startswith("linux"):
            import ctypes

            # (PyDLL: called holding the GIL; prctl returns at once, and a release and
            # take of the GIL around it would write the interpreter's state in each task)
            call = ctypes.PyDLL(None).prctl
            call.restype = ctypes.c_int
            _PRCTL.append(call)
        else:
            _PRCTL.append(None)
    return _PRCTL[0]


def _new_stdio() -> list[Any]:
    return [io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                             errors="backslashreplace", line_buffering=True)
            for fd in (1, 2)]  # fmt: skip


# [stdout, stderr, /dev/null's descriptor] made once in the fork server, unused there
_PREBUILT: list[Any] = []


def prebuild_stdio() -> None:
    """In the fork server: the writers every task would make (fds 1 and 2 are only
    numbers to them; each task dup2s its pipes there first). They are made while 1 and 2
    are a pipe, as in a task, so what they learn of their descriptor (not seekable) holds.
    The server's own streams, which each task flushes too, are listed here as well."""
    if _PREBUILT:
        return
    saved = [os.dup(1), os.dup(2)]
    r, w = os.pipe()
    try:
        os.dup2(w, 1)
        os.dup2(w, 2)
        _PREBUILT.extend(_new_stdio())
        # /dev/null opened once (not inherited by what a task runs: Python's descriptors are
        # close-on-exec); each task dup2s it onto its stdin
        _PREBUILT.append(os.open(os.devnull, os.O_RDONLY))
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, r, w):
            os.close(fd)
    _OLD[:] = _old_streams()


def _old_streams() -> list[Any]:
    old: list[Any] = []
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream and all(stream is not s for s in old):
            old.append(stream)
    return old


def own_stdio() -> None:
    """sys.stdout/sys.stderr as fresh line-buffered UTF-8 writers on file descriptors 1 and 2
    (pipes to the runtime), replacing whatever the run's process had routed there. The old
    writers (a logging handler may hold one) still write to the same descriptors; they are
    flushed at the end too."""
    if _PREBUILT:  # a task forked from the fork server: plain assignments, nothing built
        sys.stdout = sys.__stdout__ = _PREBUILT[0]  # type: ignore[misc]
        sys.stderr = sys.__stderr__ = _PREBUILT[1]  # type: ignore[misc]
        os.dup2(_PREBUILT[2], 0)
        os.close(_PREBUILT[2])
        return
    _OLD[:] = _old_streams()
    sys.stdout, sys.stderr = _new_stdio()
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr  # type: ignore[misc]
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


_OLD: list[Any] = []  # streams with a flush()


def flush_stdio() -> None:
    for stream in (*_OLD, sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
