"""Every error ledgerflow raises, with Metaflow's names where Metaflow has one.

The tree::

    LedgerflowError (alias MetaflowException)
    ├── LedgerError                    the ledger file cannot be used
    │   ├── LedgerNotFoundError        no ledger file there (also a MetaflowNotFound)
    │   ├── LedgerSchemaError          written by a newer ledgerflow / not a ledger
    │   ├── LedgerReadOnlyError        a write was attempted on a read-only ledger
    │   └── CorruptBlobError           a stored blob does not match its SHA-256
    ├── UntrustedLedgerError           unpickling from a ledger not written here needs opt-in
    ├── LintError                      the flow's graph is invalid (carries file and line)
    ├── InvalidDecoratorAttribute      a decorator is given an attribute or value it does not take
    ├── InvalidNextException           self.next() used wrongly at run time
    ├── TimeoutException               a step ran longer than its @timeout
    ├── TaskCrashed                    a task's process ended without a result (signal, exit)
    ├── FailureHandledByCatch          what @catch records when the task's process kept dying
    ├── ExecutorError                  the executor cannot run tasks any more (fork server gone)
    ├── ParameterError (ValueError)    a Parameter is declared or given wrongly
    ├── ArtifactError                  an artifact cannot be stored (name or value)
    ├── ParameterAssignmentError (AttributeError)  a step assigned to a Parameter
    ├── ExternalCommandFailed          a command ledgerflow ran for the user failed
    │   └── RunnerFailed (CalledProcessError)  the flow command exited before the run started
    ├── MergeArtifactsException        merge_artifacts() could not merge
    │   ├── UnhandledInMergeArtifactsException   conflicting values across inputs
    │   └── MissingInMergeArtifactsException     an `include` name is in no input
    ├── SQLError (ValueError)          a sql() query is invalid or tries to write
    │   └── QueryTimeout               a query ran past its time limit
    ├── SearchError (ValueError)       a search() query is not valid FTS5 syntax
    ├── MetaflowTaggingError           a tag is invalid, or a system tag was to be removed
    ├── MetaflowNotFound (KeyError)    no object at this pathspec
    │   ├── LedgerNotFoundError        (drawn above: also a LedgerError)
    │   ├── MetaflowS3NotFound         no S3 object under this key (s3.py re-exports it)
    │   └── CardNotPresentException    the task has no card (defined in cards/exception.py)
    ├── MetaflowNamespaceMismatch      the object exists outside the current namespace
    └── MetaflowInvalidPathspec (ValueError)   the pathspec is malformed

Every class is defined here except RunnerFailed, which lives in runner.py so that importing
ledgerflow does not import subprocess. Outside the tree: RunTerminated (a KeyboardInterrupt) when SIGTERM stops a run, and
MetaflowExceptionWrapper, what @catch stores (plain strings, never raised by ledgerflow).

Each message says what is wrong, where, and what to do next. Every error carries the exit
code a command line ends with (`exit_code`: 1 for LedgerflowError; RunTerminated 143, and
a plain KeyboardInterrupt INTERRUPTED_EXIT_CODE, 130) and shows itself as one line
(`show()`), as click's `ClickException` does; `cli/errors.py` is the one place that uses them.
"""

from __future__ import annotations

import sys
from typing import IO


class LedgerflowError(Exception):
    """Base of every ledgerflow error."""

    #: The command line's exit status for this error (as click's `ClickException`).
    exit_code = 1

    def __init__(self, msg: str = "", lineno: int | None = None, source_file: str | None = None):
        self.message = msg
        self.line_no = lineno
        self.source_file = source_file
        super().__init__(msg)

    def __str__(self) -> str:
        # KeyError subclasses would otherwise repr() the message in quotes.
        if self.source_file and self.line_no:
            return f"{self.source_file}:{self.line_no}: {self.message}"
        return self.message

    def format_message(self) -> str:
        """The one line a command line shows (click's name for it)."""
        return str(self)

    def show(self, file: IO[str] | None = None) -> None:
        """Print the error as one line, `Error: ...`, on stderr (or `file`), as click does."""
        print(f"Error: {self.format_message()}", file=file if file is not None else sys.stderr)


MetaflowException = LedgerflowError


class LedgerError(LedgerflowError):
    """The ledger file cannot be opened or used."""


class LedgerSchemaError(LedgerError):
    """The file is not a ledger, or was written by a newer ledgerflow."""


class LedgerReadOnlyError(LedgerError):
    """A write was attempted on a ledger opened read-only."""


class CorruptBlobError(LedgerError):
    """A stored blob's bytes do not hash to its SHA-256."""


class UntrustedLedgerError(LedgerflowError):
    """Loading a pickled artifact from a ledger written elsewhere needs an explicit opt-in."""


class LintError(LedgerflowError):
    """The flow's graph is invalid; raised before anything runs."""


class InvalidDecoratorAttribute(LedgerflowError):
    """A decorator is given an attribute or a value it does not take (as the flow is defined)."""


class InvalidNextException(LedgerflowError):
    """self.next() was called in a way the graph does not allow."""


class TimeoutException(LedgerflowError):
    """A step ran longer than its @timeout allows."""


class TaskCrashed(LedgerflowError):
    """A task's process ended without a result: killed by a signal, crashed, or exited."""


class ExecutorError(LedgerflowError):
    """The executor cannot run tasks any more (the fork server died): the run stops."""


#: The exit status after Ctrl-C (128 + SIGINT), for a plain KeyboardInterrupt.
INTERRUPTED_EXIT_CODE = 130


class RunTerminated(KeyboardInterrupt):
    """SIGTERM reached a running flow: it stops as on Ctrl-C (exit code 143)."""

    exit_code = 143  # 128 + SIGTERM
    message = "Terminated."


class MetaflowExceptionWrapper(Exception):
    """What @catch stores: the caught exception's `type`, `exception` and `stacktrace`."""

    # Plain strings only, so loading it never needs the original exception class.

    def __init__(self, exc: BaseException | None = None, stacktrace: str | None = None):
        if exc is not None:
            self.type = f"{type(exc).__module__}.{type(exc).__qualname__}"
            self.exception = str(exc)
        else:
            self.type, self.exception = "", ""
        self.stacktrace = stacktrace
        super().__init__(self.exception)

    def __reduce__(self) -> tuple:
        return (_restore_wrapper, (self.type, self.exception, self.stacktrace))

    def __str__(self) -> str:
        return f"{self.type}: {self.exception}" if self.type else self.exception

    def __repr__(self) -> str:
        return f"MetaflowExceptionWrapper({self.type}: {self.exception!r})"


def _restore_wrapper(
    type_: str, exception: str, stacktrace: str | None
) -> MetaflowExceptionWrapper:
    wrapper = MetaflowExceptionWrapper()
    wrapper.type, wrapper.exception, wrapper.stacktrace = type_, exception, stacktrace
    wrapper.args = (exception,)
    return wrapper


class ParameterError(LedgerflowError, ValueError):
    """A Parameter is declared or given wrongly."""


class ArtifactError(LedgerflowError):
    """An artifact cannot be stored: a reserved name or a value that cannot be serialized."""


class ParameterAssignmentError(LedgerflowError, AttributeError):
    """A step assigned to a Parameter (or IncludeFile) attribute: parameters are read-only."""

    # An AttributeError, as in Metaflow, so `except AttributeError` catches it.


class ExternalCommandFailed(LedgerflowError):
    """A command run on the user's behalf failed (Metaflow's name, e.g. for Runner)."""


class MergeArtifactsException(LedgerflowError):
    """merge_artifacts() could not merge; `artifact_names` lists the culprits."""

    def __init__(self, msg: str, unhandled: list[str]):
        super().__init__(msg)
        self.artifact_names = unhandled


class UnhandledInMergeArtifactsException(MergeArtifactsException):
    """Inputs carry different values for the same artifact and the join did not set it."""


class MissingInMergeArtifactsException(MergeArtifactsException):
    """An artifact named in `include` is present in no input."""


class SQLError(LedgerflowError, ValueError):
    """A query given to sql() is invalid or tries to write."""


class QueryTimeout(SQLError):
    """A query ran past its time limit and was stopped."""


class SearchError(LedgerflowError, ValueError):
    """The search query is not valid FTS5 syntax."""


class MetaflowTaggingError(LedgerflowError):
    """A tag is invalid, or a system tag was to be removed."""


class MetaflowNotFound(LedgerflowError, KeyError):
    """No flow, run, step, task or artifact exists at this pathspec."""


class LedgerNotFoundError(LedgerError, MetaflowNotFound):
    """There is no ledger file at the path, so nothing is found there."""

    # A MetaflowNotFound too: Metaflow's client says so when a flow has no runs.


class MetaflowS3NotFound(MetaflowNotFound):
    """No S3 object under this key for this run."""


class MetaflowNamespaceMismatch(LedgerflowError):
    """The object exists but not in the current namespace."""

    def __init__(self, namespace: str | None, pathspec: str = ""):
        where = f"{pathspec} is " if pathspec else "Object "
        super().__init__(
            f"{where}not in namespace '{namespace}'; call namespace(None) to see every run"
        )


class MetaflowInvalidPathspec(LedgerflowError, ValueError):
    """The pathspec is malformed."""


__all__ = [
    "ArtifactError",
    "CorruptBlobError",
    "ExternalCommandFailed",
    "InvalidNextException",
    "LedgerError",
    "LedgerReadOnlyError",
    "LedgerNotFoundError",
    "LedgerSchemaError",
    "LedgerflowError",
    "LintError",
    "MergeArtifactsException",
    "MetaflowException",
    "MetaflowExceptionWrapper",
    "MetaflowInvalidPathspec",
    "MetaflowNamespaceMismatch",
    "MetaflowNotFound",
    "MetaflowS3NotFound",
    "MetaflowTaggingError",
    "MissingInMergeArtifactsException",
    "ParameterAssignmentError",
    "ParameterError",
    "QueryTimeout",
    "RunTerminated",
    "SQLError",
    "SearchError",
    "TimeoutException",
    "UnhandledInMergeArtifactsException",
    "UntrustedLedgerError",
]


class FailureHandledByCatch(LedgerflowError):
    """What @catch records when the task's process kept dying (Metaflow's message)."""

    # Raised by @catch's fallback attempt (attempts.py), never by the step itself.
    def __init__(self, retry_count: int):
        super().__init__(
            f"Task execution kept failing over {retry_count} attempts. Your code did not "
            "raise an exception. Something in the execution environment caused the failure."
        )


__all__.append("FailureHandledByCatch")
