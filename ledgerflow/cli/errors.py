"""The one error handler of both command lines (`ledgerflow ...` and `python flow.py ...`).

A library error shows itself as one line and exits with its `exit_code` (as click's
`ClickException`); so does an interrupt (Ctrl-C: 130; SIGTERM of a run, `RunTerminated`:
143, see exceptions.py); a closed pipe exits 0; anything else is an internal error, exit 1.
`--debug` shows tracebacks instead. Every message is made `printable` first: it may quote
text from the ledger, which a received file's sender wrote.

A flow's mistakes can also stop its script before the command line runs: a decorator given
an attribute it does not take (`@retry(tims=1)`) or a Parameter declared wrongly raises while
the class is being defined. `report_uncaught` (Python's excepthook, set by the package face)
shows those as one line too, with the file and line of the flow's code.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ..exceptions import (
    INTERRUPTED_EXIT_CODE,
    InvalidDecoratorAttribute,
    LedgerflowError,
    ParameterError,
)

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def exit_on_closed_pipe() -> NoReturn:
    """The reader of our output went away (`ledgerflow runs | head -2`): stop quietly and
    exit 0, as git does. stdout is pointed at /dev/null first, so the flush Python does at
    exit cannot raise a second BrokenPipeError ("Exception ignored ...") on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. click's test runner)
        pass
    sys.exit(0)


def call_reporting_errors(func: Callable[[], Any], debug: bool,
                          passthrough: tuple[type[BaseException], ...] = ()) -> Any:  # fmt: skip
    """Call func, reporting what it raises as the module docstring says. Exceptions in
    `passthrough` (click's own, which click reports) go up untouched."""
    try:
        return func()
    except passthrough:
        raise
    except SystemExit:
        raise
    except BrokenPipeError as e:
        if _output_closed():
            exit_on_closed_pipe()
        _internal_error(e, debug)
    except LedgerflowError as e:
        if debug:
            raise
        _show_escaped(e)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        print(getattr(e, "message", "Interrupted."), file=sys.stderr)
        # The runtime has recorded everything; tasks still running in worker threads
        # (--executor thread) cannot be stopped from outside, and a normal exit would wait.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(getattr(e, "exit_code", INTERRUPTED_EXIT_CODE))
    except Exception as e:  # noqa: BLE001 - anything else is ledgerflow's bug: one line, exit 1
        _internal_error(e, debug)


def _internal_error(e: Exception, debug: bool) -> NoReturn:
    if debug:
        raise e
    from ..identify import undecodable

    known = undecodable(e)  # a received file's text that is not UTF-8: one line, not ours
    if known is not None:
        _show_escaped(known)
        sys.exit(known.exit_code)
    print(f"Internal error: {type(e).__name__}: {printable(str(e))} (run with --debug for "
          "the traceback)", file=sys.stderr)  # fmt: skip
    sys.exit(1)


def _show_escaped(e: LedgerflowError) -> None:
    """`Error: ...` as e.show() prints it, with control characters escaped: messages quote
    names and text from the ledger, which a received file's sender wrote (an ESC or OSC
    sequence there must not reach the terminal)."""
    print(f"Error: {printable(e.format_message())}", file=sys.stderr)


def _output_closed() -> bool:
    """True if our stdout or stderr is a pipe whose reader went away: only then is a
    BrokenPipeError the quiet end of `| head`; from anywhere else it is an error."""
    import select

    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # click's test runner: a plain buffer
            return True
        poll = select.poll()
        poll.register(fd, select.POLLOUT)  # a write end with no reader reports POLLERR
        if any(events & select.POLLERR for _, events in poll.poll(0)):
            return True
    return False


# C0 controls but tab and newline, DEL, C1 controls: what a terminal may act on (ESC opens
# colour, title and OSC 8 link sequences, CR rewrites the line).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters shown as escapes (\\x1b)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def report_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any,
                    previous: Callable[..., Any]) -> None:  # fmt: skip
    """An exception no code caught: a flow definition's mistake is one line, `Error:
    file:line: ...` (the innermost frame of the user's code); anything else, or anything
    with `--debug` on the command line, goes to `previous` (Python's traceback)."""
    if not isinstance(exc, (InvalidDecoratorAttribute, ParameterError)) or "--debug" in sys.argv:
        previous(exc_type, exc, tb)
        return
    where = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE):
            where = f"{os.path.basename(filename)}:{tb.tb_lineno}: "
        tb = tb.tb_next
    print(f"Error: {where}{printable(exc.format_message())}", file=sys.stderr)
