"""ledgerflow: run Metaflow-style flows and keep every run, task, log and artifact in one
SQLite file. Change `from metaflow import ...` to `from ledgerflow import ...`."""

from __future__ import annotations

__version__ = "0.1.0"

from .current import current
from .decorators import step
from .exceptions import (
    MergeArtifactsException,
    MetaflowException,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
    MissingInMergeArtifactsException,
    UnhandledInMergeArtifactsException,
)
from .flowspec import FlowSpec
from .parameters import IncludeFile, JSONType, Parameter

__all__ = [
    "__version__",
    "FlowSpec",
    "step",
    "Parameter",
    "IncludeFile",
    "JSONType",
    "current",
    "MetaflowException",
    "MergeArtifactsException",
    "UnhandledInMergeArtifactsException",
    "MissingInMergeArtifactsException",
    "MetaflowNotFound",
    "MetaflowNamespaceMismatch",
    "MetaflowInvalidPathspec",
]
