"""Flow classes and their graphs, per process: a worker resolves the class a `TaskSpec`
names (registered here, or loaded from its file in a fresh process) and builds its graph
once.

Owner: taskpath. The runtime registers the run's class; executors/dask.py registers the
class (and the graph) it ships to a worker with `register_flow_class(..., graph=)`.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import TYPE_CHECKING, Any

from .graph import keep_graph

if TYPE_CHECKING:
    from .flowspec import FlowSpec
    from .taskspec import TaskSpec

_FLOW_CLASSES: dict[tuple[str, str], type[FlowSpec]] = {}
_lock = threading.Lock()


def register_flow_class(cls: type[FlowSpec], module: str | None = None,
                        graph: Any = None) -> None:  # fmt: skip
    """Make a flow class resolvable by workers in this process (and forked children), under
    its module's name or the one given (a class shipped to a remote worker), with its graph
    when it came along (built elsewhere: a Dask worker need not parse the flow's source)."""
    _FLOW_CLASSES[(module or cls.__module__, cls.__name__)] = cls
    if graph is not None:
        keep_graph(cls, graph)


def registered_flow_classes() -> list[type[FlowSpec]]:
    """The flow classes registered in this process (the fork server warms their steps)."""
    return list(_FLOW_CLASSES.values())


def flow_class(spec: TaskSpec) -> type[FlowSpec]:
    cls = _FLOW_CLASSES.get((spec.flow_module, spec.class_name))  # (registered: one call)
    return cls if cls is not None else load_flow_class(spec.flow_file, spec.flow_module,
                                                       spec.class_name)  # fmt: skip


def load_flow_class(flow_file: str, flow_module: str, class_name: str) -> type[FlowSpec]:
    """The flow class, registered in this process or loaded from its file (in a fresh
    process: as module `_ledgerflow_flow`, so its `__main__` guard stays shut)."""
    cls = _FLOW_CLASSES.get((flow_module, class_name))
    if cls is not None:
        return cls
    with _lock:
        module_spec = importlib.util.spec_from_file_location("_ledgerflow_flow", flow_file)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load flow file {flow_file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules.setdefault("_ledgerflow_flow", module)
        module_spec.loader.exec_module(module)
        cls = getattr(module, class_name)
        from .configs import apply_from_environment  # the run's Config values
        from .decorators import apply_with_from_environment  # and its --with decorators

        apply_from_environment(cls)
        apply_with_from_environment(cls)
        _FLOW_CLASSES[(flow_module, class_name)] = cls
        return cls
