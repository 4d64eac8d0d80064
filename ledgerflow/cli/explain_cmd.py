"""`ledgerflow explain`: what a task's reuse key is made of, and why it was or was not reused
(`ledgerflow/explain.py` reads it; this prints it)."""

from __future__ import annotations

import click

from .ledger_args import echo_json, expand_pathspec, open_ledger


@click.command()
@click.argument("pathspec")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per task.")
@click.pass_context
def explain(ctx: click.Context, pathspec: str, as_json: bool) -> None:
    """Say why a task was reused by `run --reuse`, or why it ran: the parts of its key
    (its step's code, the environment, its inputs, its foreach position), compared with the
    latest earlier successful task of the same step at the same position. A step path
    (Flow/RunId/step) explains each of its tasks. A pathspec may start with a bare run id.

    \b
    Example: ledgerflow explain MyFlow/1795700104055947269005/train/3
    """
    from .. import reads
    from ..explain import explain_lines, explain_task
    from .common import BadParameter

    ledger = open_ledger(ctx)
    parts = expand_pathspec(
        ledger, pathspec, "PATHSPEC", "a pathspec; expected Flow/RunId/step[/TaskId]", 4
    )
    if len(parts) < 3:
        raise BadParameter(f"{pathspec!r} names no step; give Flow/RunId/step[/TaskId]",
                           param_hint="PATHSPEC")  # fmt: skip
    flow, run_id, step = parts[:3]
    if len(parts) == 4:
        task_ids = [parts[3]]
    else:
        run = reads.run_row(ledger, flow, run_id)
        task_ids = sorted(reads.task_ids(ledger, run["pk"], step), key=reads.id_key)
        if not task_ids:
            raise BadParameter(f"step {flow}/{run_id}/{step} has no tasks",
                               param_hint="PATHSPEC")  # fmt: skip
    docs = [explain_task(ledger, flow, run_id, step, task_id) for task_id in task_ids]
    if as_json:
        echo_json(docs if len(docs) > 1 else docs[0])
        return
    for doc in docs:
        for line in explain_lines(doc):
            click.echo(line)
