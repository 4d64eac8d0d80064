"""Running a flow from its command line, whichever parser read it (click, or the plain fast
path): validate the graph, open the ledger, run, report. Imports no click."""

from __future__ import annotations

import sys
from typing import Any

from .. import __version__
from ..current import get_username
from ..executors import DEFAULT_MAX_WORKERS, EXECUTORS
from ..runtime import DEFAULT_MAX_NUM_SPLITS
from ..structs import factory, struct


@struct
class RunOptions:
    """What `run` and `resume` take besides the flow's parameters."""

    db: str | None = None
    quiet: bool = False
    verbose: bool = False
    executor: str = "thread"
    max_workers: int = DEFAULT_MAX_WORKERS
    max_num_splits: int = DEFAULT_MAX_NUM_SPLITS
    tags: list[str] = factory(list)
    run_id_file: str | None = None


EXECUTOR_NAMES = list(EXECUTORS)


def validated_graph(flow_cls: type) -> Any:
    from ..lint import check
    from ..task import flow_graph

    graph = flow_graph(flow_cls)
    check(graph, flow_cls)
    return graph


def execute_run(flow_cls: type, values: dict[str, Any], options: RunOptions,
                **resume: Any) -> None:  # fmt: skip
    """Run the flow (exit 1 if it fails; with --quiet print only the run id)."""
    from ..ledger import Ledger
    from ..runtime import Runtime

    ledger = Ledger.open(options.db)
    if not options.quiet:
        print(f"ledgerflow {__version__} executing {flow_cls.__name__} for "
              f"user:{get_username()} (ledger: {ledger.path})")  # fmt: skip
    executor = EXECUTORS[options.executor](options.max_workers)

    def on_run_id(run_id: str) -> None:
        if options.run_id_file:
            with open(options.run_id_file, "w") as f:
                f.write(run_id)

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
        **resume,
    )
    outcome = runtime.run()
    if outcome.status != "succeeded":
        failed = ", ".join(outcome.failed_tasks) or "no task reached the end step"
        print(f"Run {flow_cls.__name__}/{outcome.run_id} failed: {failed}", file=sys.stderr)
        sys.exit(1)
    if options.quiet:
        print(outcome.run_id)
