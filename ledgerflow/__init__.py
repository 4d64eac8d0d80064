"""ledgerflow: run Metaflow-style flows and keep every run, task, log and artifact in one
SQLite file. Change `from metaflow import ...` to `from ledgerflow import ...`."""

import sys as _sys
from types import TracebackType as _TracebackType

from . import rng
from .current import current
from .current import use_client as _use_client
from .decorators import (
    batch,
    card,
    catch,
    conda,
    conda_base,
    environment,
    kubernetes,
    parallel,
    project,
    pypi,
    pypi_base,
    resources,
    retry,
    reuse,
    schedule,
    secrets,
    step,
    timeout,
    trigger,
    trigger_on_finish,
)
from .exceptions import (
    ExternalCommandFailed,
    MergeArtifactsException,
    MetaflowException,
    MetaflowExceptionWrapper,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
    MetaflowTaggingError,
    MissingInMergeArtifactsException,
    UnhandledInMergeArtifactsException,
)
from .flowspec import FlowSpec
from .flowspec import use_command_line as _use_command_line
from .parameters import IncludeFile, JSONType, Parameter
from .version import __version__

rng.watch()  # before the flow module's own code: does it seed `random` or numpy? (rng.py)


# This face sits above every module of the package, so it is the one place that wires the
# two things a flow reaches upward for: what `FlowSpec()` runs (its command line) and what
# `current.run` / `current.task` return (Client API objects). Both load on first use.
def _flow_command_line(flow_cls: type) -> None:
    from .executors.early import fork_early

    fork_early(flow_cls, _sys.argv[1:])  # before the command line loads: early.py says why
    from .cli.flow_cli import main

    main(flow_cls)


def _client_classes() -> tuple[type, type]:
    from .client import Run, Task

    return Run, Task


def _report_uncaught(exc_type: type[BaseException], exc: BaseException,
                     tb: _TracebackType | None) -> None:  # fmt: skip
    from .cli.errors import report_uncaught

    report_uncaught(exc_type, exc, tb, _python_excepthook)


_use_command_line(_flow_command_line)
_use_client(_client_classes)
# A flow's definition mistakes (`@retry(tims=1)`) stop its script before its command line
# runs: shown as one line as well (cli/errors.py).
_python_excepthook = _sys.excepthook
_sys.excepthook = _report_uncaught

# Read-side names, and Config (few flows use it), load on first use, so `import ledgerflow`
# in a flow stays quick.
_LAZY = {
    "Config": "configs", "ConfigValue": "configs", "config_expr": "configs",
    "Metaflow": "client", "Flow": "client", "Run": "client", "Step": "client",
    "Task": "client", "DataArtifact": "client", "namespace": "client",
    "get_namespace": "client", "default_namespace": "client", "metadata": "client",
    "get_metadata": "client", "default_metadata": "client", "use_ledger": "client",
    "search": "fulltext", "sql": "query", "trust": "trust_store", "S3": "s3",
    "Runner": "runner", "NBRunner": "runner", "ExecutingRun": "runner",
}  # fmt: skip


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledgerflow' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "__version__",
    # authoring
    "FlowSpec", "step", "Parameter", "IncludeFile", "JSONType", "current",
    "retry", "catch", "timeout", "resources", "environment", "batch", "kubernetes", "conda",
    "pypi", "card", "secrets", "project", "schedule", "conda_base", "pypi_base", "trigger",
    "trigger_on_finish", "parallel", "Config", "ConfigValue", "config_expr", "reuse",
    # running from Python and notebooks
    "Runner", "NBRunner", "ExecutingRun",
    # reading back
    "Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "namespace", "get_namespace",
    "default_namespace", "metadata", "get_metadata", "default_metadata", "use_ledger",
    "search", "sql", "trust", "S3",
    # errors
    "MetaflowException", "MetaflowExceptionWrapper", "MergeArtifactsException",
    "UnhandledInMergeArtifactsException", "MissingInMergeArtifactsException",
    "MetaflowNotFound", "MetaflowNamespaceMismatch", "MetaflowInvalidPathspec",
    "MetaflowTaggingError", "ExternalCommandFailed",
]  # fmt: skip
