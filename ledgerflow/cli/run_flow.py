"""Running a flow from its command line once click has read it: validate the graph, open
the ledger, run, report. Imports no click itself."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from .. import executors
from ..current import get_username
from ..executors import DEFAULT_EXECUTOR, DEFAULT_MAX_WORKERS, EXECUTORS, Executor
from ..runtime import DEFAULT_MAX_NUM_SPLITS
from ..structs import field, struct
from ..version import __version__


@struct
class RunOptions:
    """What `run` and `resume` take besides the flow's parameters."""

    db: str | None = None
    quiet: bool = False
    verbose: bool = False
    executor: str = DEFAULT_EXECUTOR
    max_workers: int = DEFAULT_MAX_WORKERS
    max_num_splits: int = DEFAULT_MAX_NUM_SPLITS
    tags: list[str] = field(factory=list)
    run_id_file: str | None = None
    runner_attribute_file: str | None = None  # JSON for Runner: run_id, flow_name, metadata
    environment: str | None = None  # Metaflow's --environment: only warned about
    dask_scheduler: str | None = None  # --executor dask: this scheduler, else a LocalCluster
    reuse: bool = False  # --reuse: clone tasks whose code and inputs the ledger has seen


EXECUTOR_NAMES = list(EXECUTORS)


def validated_graph(flow_cls: type) -> Any:
    from ..graph import flow_graph
    from ..lint import check

    graph = flow_graph(flow_cls)
    check(graph, flow_cls)
    return graph


@contextlib.contextmanager
def parameter_context(flow_cls: type) -> Iterator[None]:
    """`current` as a parameter's default function sees it in Metaflow: the flow's name, the
    user and the @project names (no run yet)."""
    from ..current import current
    from ..decorators import project_info

    user = get_username()
    current._set(flow_name=flow_cls.__name__, username=user,
                 **project_info(flow_cls, user))  # fmt: skip
    try:
        yield
    finally:
        current._clear()


def refuse_unsupported(flow_cls: type) -> None:
    """Exit 1 with one line per Metaflow feature the flow uses that ledgerflow lacks."""
    from ..decorators import unsupported_features

    found = unsupported_features(flow_cls)
    for line in found:
        print(line, file=sys.stderr)
    if found:
        sys.exit(1)


def _write_attributes(path: str, run_id: str, flow_name: str, ledger_path: Any) -> None:
    """Metaflow's runner attribute file: what `Runner` reads to find the run."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        json.dump({"run_id": run_id, "flow_name": flow_name,
                   "metadata": f"ledger@{ledger_path}"}, f)  # fmt: skip


def make_executor(options: RunOptions) -> Executor:
    """The executor the options name (each class takes what it needs of the options)."""
    return executors.make_executor(options.executor, options.max_workers,
                                   dask_scheduler=options.dask_scheduler)  # fmt: skip


def execute_run(flow_cls: type, values: dict[str, Any], options: RunOptions,
                **resume: Any) -> None:  # fmt: skip
    """Run the flow (exit 1 if it fails; with --quiet print only the run id)."""
    from ..ledger import Ledger
    from ..runtime import Runtime

    executor = make_executor(options)
    # Before this process opens the ledger (the fork server is forked here: processes.py).
    executor.prepare(flow_cls)
    from ..executors.early import dismiss

    dismiss()  # a fork server forked early that this executor did not take ends now
    try:
        ledger = Ledger.open(options.db)
    except BaseException:
        executor.shutdown()
        raise
    if not options.quiet:
        print(f"ledgerflow {__version__} executing {flow_cls.__name__} for "
              f"user:{get_username()} (ledger: {ledger.path})")  # fmt: skip
    from ..decorators import unapplied_warnings

    for warning in unapplied_warnings(flow_cls, options.environment):
        print(warning, file=sys.stderr)  # even with --quiet: they explain later failures

    def on_run_id(run_id: str) -> None:
        if options.run_id_file:
            with open(options.run_id_file, "w") as f:
                f.write(run_id)
        if options.runner_attribute_file:
            _write_attributes(options.runner_attribute_file, run_id, flow_cls.__name__,
                              ledger.path)  # fmt: skip

    runtime = Runtime(
        flow_cls,
        ledger,
        values,
        executor=executor,
        tags=list(options.tags),
        max_num_splits=options.max_num_splits,
        quiet=options.quiet,
        verbose=options.verbose,
        on_run_id=on_run_id,
        reuse=options.reuse,
        **resume,
    )
    outcome = runtime.run()
    if outcome.status != "succeeded":
        failed = ", ".join(outcome.failed_tasks) or "no task reached the end step"
        print(f"Run {flow_cls.__name__}/{outcome.run_id} failed: {failed}", file=sys.stderr)
        sys.exit(1)
    if options.quiet:
        print(outcome.run_id)
