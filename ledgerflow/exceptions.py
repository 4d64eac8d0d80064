"""Every error ledgerflow raises, with Metaflow's names where Metaflow has one.

The tree::

    LedgerflowError (alias MetaflowException)
    ├── LedgerError                    the ledger file cannot be used
    │   ├── LedgerNotFoundError        no ledger file there (also a MetaflowNotFound)
    │   ├── LedgerSchemaError          written by a newer ledgerflow / not a ledger
    │   └── LedgerReadOnlyError        a write was attempted on a read-only ledger
    ├── CorruptBlobError               a stored blob does not match its SHA-256
    ├── UntrustedLedgerError           unpickling from a ledger not written here needs opt-in
    ├── LintError                      the flow's graph is invalid (carries file and line)
    ├── InvalidNextException           self.next() used wrongly at run time
    ├── TimeoutException               a step ran longer than its @timeout
    ├── TaskCrashed                    a task's process ended without a result (signal, exit)
    ├── ParameterError (ValueError)    a Parameter is declared or given wrongly
    ├── ArtifactError                  an artifact cannot be stored (name or value)
    ├── ParameterAssignmentError (AttributeError)  a step assigned to a Parameter
    ├── ExternalCommandFailed          a command ledgerflow ran for the user failed
    ├── MergeArtifactsException        merge_artifacts() could not merge
    │   ├── UnhandledInMergeArtifactsException   conflicting values across inputs
    │   └── MissingInMergeArtifactsException     an `include` name is in no input
    ├── MetaflowTaggingError           a tag is invalid, or a system tag was to be removed
    ├── MetaflowNotFound (KeyError)    no object at this pathspec
    ├── MetaflowNamespaceMismatch      the object exists outside the current namespace
    └── MetaflowInvalidPathspec (ValueError)   the pathspec is malformed

Outside the tree: RunTerminated (a KeyboardInterrupt) when SIGTERM stops a run.

Each message says what is wrong, where, and what to do next.
"""

from __future__ import annotations


class LedgerflowError(Exception):
    """Base of every ledgerflow error."""

    headline = "Flow failed"

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


MetaflowException = LedgerflowError


class LedgerError(LedgerflowError):
    """The ledger file cannot be opened or used."""

    headline = "Ledger error"


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

    headline = "Validity checker found an issue"


class InvalidNextException(LedgerflowError):
    """self.next() was called in a way the graph does not allow."""

    headline = "Invalid self.next() transition detected"


class TimeoutException(LedgerflowError):
    """A step ran longer than its @timeout allows."""

    headline = "@timeout"


class TaskCrashed(LedgerflowError):
    """A task's process ended without a result: killed by a signal, crashed, or exited."""


class RunTerminated(KeyboardInterrupt):
    """SIGTERM reached a running flow: it stops as on Ctrl-C (exit code 143)."""


class MetaflowExceptionWrapper(Exception):
    """What @catch stores: the caught exception's `type`, `exception` text and `stacktrace`.

    Plain strings only, so loading it never needs the original exception class."""

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


def _restore_wrapper(type_: str, exception: str, stacktrace: str | None) -> MetaflowExceptionWrapper:
    wrapper = MetaflowExceptionWrapper()
    wrapper.type, wrapper.exception, wrapper.stacktrace = type_, exception, stacktrace
    wrapper.args = (exception,)
    return wrapper


class ParameterError(LedgerflowError, ValueError):
    """A Parameter is declared or given wrongly."""

    headline = "Invalid parameter"


class ArtifactError(LedgerflowError):
    """An artifact cannot be stored: a reserved name or a value that cannot be serialized."""

    headline = "Artifact error"


class ParameterAssignmentError(LedgerflowError, AttributeError):
    """A step assigned to a Parameter (or IncludeFile) attribute: parameters are read-only.
    An AttributeError, as in Metaflow, so `except AttributeError` catches it."""

    headline = "Parameter assignment"


class ExternalCommandFailed(LedgerflowError):
    """A command run on the user's behalf failed (Metaflow's name, e.g. for Runner)."""

    headline = "External command failed"


class MergeArtifactsException(LedgerflowError):
    """merge_artifacts() could not merge; `artifact_names` lists the culprits."""

    headline = "Merge artifacts failed"

    def __init__(self, msg: str, unhandled: list[str]):
        super().__init__(msg)
        self.artifact_names = unhandled


class UnhandledInMergeArtifactsException(MergeArtifactsException):
    """Inputs carry different values for the same artifact and the join did not set it."""

    headline = "Unhandled artifacts in merge"


class MissingInMergeArtifactsException(MergeArtifactsException):
    """An artifact named in `include` is present in no input."""

    headline = "Missing artifacts in merge"


class MetaflowTaggingError(LedgerflowError):
    """A tag is invalid, or a system tag was to be removed."""

    headline = "Tagging error"


class MetaflowNotFound(LedgerflowError, KeyError):
    """No flow, run, step, task or artifact exists at this pathspec."""

    headline = "Object not found"


class LedgerNotFoundError(LedgerError, MetaflowNotFound):
    """There is no ledger file at the path: for the Client API, nothing is found (a
    MetaflowNotFound, as Metaflow's client says when a flow has no runs)."""


class MetaflowNamespaceMismatch(LedgerflowError):
    """The object exists but not in the current namespace."""

    headline = "Object not in the current namespace"

    def __init__(self, namespace: str | None, pathspec: str = ""):
        where = f"{pathspec} is " if pathspec else "Object "
        super().__init__(
            f"{where}not in namespace '{namespace}'; call namespace(None) to see every run"
        )


class MetaflowInvalidPathspec(LedgerflowError, ValueError):
    """The pathspec is malformed."""

    headline = "Invalid pathspec"


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
    "MetaflowTaggingError",
    "MissingInMergeArtifactsException",
    "ParameterAssignmentError",
    "ParameterError",
    "TimeoutException",
    "UnhandledInMergeArtifactsException",
    "UntrustedLedgerError",
]
