"""Metaflow's Client API over the ledger: `from ledgerflow.client import Flow, Run, ...`.

    use_ledger("ledgerflow.db")            # or metadata("ledger@..."), or ledger=... per object
    run = Flow("MyFlow").latest_successful_run
    run.data.result                        # the end task's artifact
    run["train"].task["model"].data        # one artifact, decoded on access

Everything is read with indexed SQL; only `.data` decodes stored values. Runs are
filtered by the namespace (default 'user:<you>'; `namespace(None)` shows all).
"""

from __future__ import annotations

from ..exceptions import MetaflowExceptionWrapper, MetaflowTaggingError
from ..ledger_choice import default_metadata, get_metadata, metadata, use_ledger
from .base import MetaflowObject
from .context import default_namespace, get_namespace, namespace
from .extras import Metadata, MetaflowCode, MetaflowData
from .objects import DataArtifact, Flow, Metaflow, Run, Step, Task

__all__ = [
    "DataArtifact",
    "Flow",
    "Metadata",
    "Metaflow",
    "MetaflowCode",
    "MetaflowData",
    "MetaflowExceptionWrapper",
    "MetaflowObject",
    "MetaflowTaggingError",
    "Run",
    "Step",
    "Task",
    "default_metadata",
    "default_namespace",
    "get_metadata",
    "get_namespace",
    "metadata",
    "namespace",
    "use_ledger",
]
