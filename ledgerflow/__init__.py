"""ledgerflow: run Metaflow-style flows and keep every run, task, log and artifact in one
SQLite file. Change `from metaflow import ...` to `from ledgerflow import ...`."""

from __future__ import annotations

__version__ = "0.1.0"

from .current import current
from .decorators import (
    batch,
    card,
    catch,
    conda,
    conda_base,
    environment,
    kubernetes,
    project,
    pypi,
    pypi_base,
    resources,
    retry,
    schedule,
    secrets,
    step,
    timeout,
    trigger,
    trigger_on_finish,
)
from .exceptions import (
    MergeArtifactsException,
    MetaflowExceptionWrapper,
    MetaflowException,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
    MissingInMergeArtifactsException,
    UnhandledInMergeArtifactsException,
)
from .flowspec import FlowSpec
from .parameters import IncludeFile, JSONType, Parameter
from .query import sql
from .search import search

__all__ = [
    "__version__",
    "FlowSpec",
    "step",
    "retry",
    "catch",
    "timeout",
    "resources",
    "environment",
    "batch",
    "kubernetes",
    "conda",
    "pypi",
    "card",
    "secrets",
    "project",
    "schedule",
    "conda_base",
    "pypi_base",
    "trigger",
    "trigger_on_finish",
    "Parameter",
    "IncludeFile",
    "JSONType",
    "current",
    "search",
    "sql",
    "MetaflowException",
    "MetaflowExceptionWrapper",
    "MergeArtifactsException",
    "UnhandledInMergeArtifactsException",
    "MissingInMergeArtifactsException",
    "MetaflowNotFound",
    "MetaflowNamespaceMismatch",
    "MetaflowInvalidPathspec",
]
