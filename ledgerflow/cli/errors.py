"""Library errors as one clear line and an exit code, with or without click."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ..exceptions import LedgerflowError


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
    """Call func; a library error becomes one line on stderr and exit 1 (the traceback with
    --debug), Ctrl-C exit 130. Exceptions in `passthrough` (click's own) go up untouched."""
    try:
        return func()
    except passthrough:
        raise
    except SystemExit:
        raise
    except BrokenPipeError:
        exit_on_closed_pipe()
    except LedgerflowError as e:
        if debug:
            raise
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        # The runtime has recorded everything; tasks still running in worker threads
        # cannot be stopped from outside, and a normal exit would wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except Exception as e:
        if debug:
            raise
        print(f"Internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)
