"""The `ledgerflow` command: look at a ledger from the shell. Thin over the library."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..version import __version__
from . import explain_cmd, ui_cmd, upkeep_cmds
from .common import CLICK_OWN, BadParameter, UsageError, echo_table, printable
from .errors import call_reporting_errors
from .ledger_args import echo_json, expand_pathspec, ledger_path, open_ledger, run_named


class _Group(click.Group):
    """Library errors become one line and their exit code; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        return call_reporting_errors(
            lambda: super(_Group, self).invoke(ctx),
            bool(ctx.params.get("debug")),
            passthrough=CLICK_OWN,
        )


def _timeout_option(help: str) -> Any:
    """--timeout SECONDS (default 60), for the commands that run a query."""
    return click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
                        show_default=True, metavar="SECONDS", help=help)  # fmt: skip


@click.group(cls=_Group)
@click.option(
    "--db",
    default=None,
    metavar="PATH",
    help="Ledger file (default: $LEDGERFLOW_DB, else the nearest ledgerflow.db).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, prog_name="ledgerflow")
@click.pass_context
def cli(ctx: click.Context, db: str | None, debug: bool) -> None:
    """Browse the runs, tasks and artifacts kept in a ledgerflow ledger.

    \b
    Example: ledgerflow --db results.db runs
    """
    ctx.obj = {"db": db}


@cli.command()
@click.argument("flow", required=False)
@click.option(
    "--status",
    type=click.Choice(["running", "succeeded", "failed", "crashed"]),
    help="Only runs with this status.",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Only runs having this tag (repeatable: runs having all of them).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=10**9),
    default=20,
    show_default=True,
    help="At most this many runs.",
)
@click.option(
    "--params", "with_params", is_flag=True, help="Add a column with each run's parameter values."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of run objects.")
@click.pass_context
def runs(
    ctx: click.Context,
    flow: str | None,
    status: str | None,
    tags: tuple[str, ...],
    limit: int,
    with_params: bool,
    as_json: bool,
) -> None:
    """List runs, newest first, with their status, duration, number of tasks and user tags.

    A run still recorded as running whose process is gone (on this machine) shows as
    crashed. --json adds the system tags and the parameters. Times are local, with
    their UTC offset.

    \b
    Example: ledgerflow runs MyFlow --status failed --tag nightly --limit 5 --params
    """
    from .reads import recent_runs, require_flow
    from .show import echo_runs

    ledger = open_ledger(ctx)
    if flow is not None:
        require_flow(ledger, flow)
    records = recent_runs(ledger, flow=flow, status=status, tags=tags, limit=limit)
    if as_json:
        echo_json(records)
    elif not records:
        click.echo("No runs.")
    else:
        echo_runs(records, with_params=with_params)


@cli.command()
@click.argument("pathspec")
@click.option(
    "--load",
    is_flag=True,
    help="For an artifact: load and print its value (JSON-encoded values load "
    "freely; a pickle written on another machine needs --trust).",
)
@click.option(
    "--trust", is_flag=True, help="Allow --load to unpickle a value written on another machine."
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="For a step: list at most this many tasks, by task id (0: all).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (its 'kind' says which).")
@click.pass_context
def show(
    ctx: click.Context, pathspec: str, load: bool, trust: bool, limit: int, as_json: bool
) -> None:
    """Show a flow (its recent runs), a run (its steps in graph order, with task counts
    and statuses), a step (its tasks), a task (its artifacts: type, size, preview) or an
    artifact (its preview and metadata; the value with --load).

    Never unpickles anything unless --load is given for an artifact.

    A pathspec may start with a bare run id (1795700104055947269005/train) when only one
    flow has that run. A task shows the tail of its stdout and stderr too.

    \b
    Example: ledgerflow show MyFlow/1795700104055947269005/train/3
    """
    from . import show as shows

    ledger = open_ledger(ctx)
    parts = expand_pathspec(ledger, pathspec, "PATHSPEC",
                            "a pathspec; expected Flow[/RunId[/step[/TaskId[/name]]]]",
                            len(shows.KINDS))  # fmt: skip
    if load and len(parts) != 5:
        raise UsageError("--load applies to an artifact: Flow/RunId/step/TaskId/name")
    if trust:
        from ..trust_store import trust as trust_ledger

        trust_ledger(ledger.path)
    doc = shows.describe(ledger, parts, load=load, limit=limit)
    if as_json:
        echo_json(doc)
    else:
        shows.echo(doc)


@cli.command()
@click.argument("pathspec")
@click.option("--stdout", "only_stdout", is_flag=True, help="Only stdout.")
@click.option("--stderr", "only_stderr", is_flag=True, help="Only stderr.")
@click.option(
    "--raw",
    is_flag=True,
    help="The text exactly as stored, control characters too (for your own output).",
)
@click.option(
    "--attempt",
    type=click.IntRange(min=0),
    default=None,
    help="This attempt of each task (default: the latest); tasks without it are skipped.",
)
@click.pass_context
def logs(
    ctx: click.Context,
    pathspec: str,
    only_stdout: bool,
    only_stderr: bool,
    attempt: int | None,
    raw: bool = False,
) -> None:
    """Print what a task (Flow/RunId/step/TaskId), every task of a step (Flow/RunId/step)
    or of a run (Flow/RunId) wrote to stdout and stderr, as stored in the ledger: no flow
    file needed. A pathspec may start with a bare run id. Headers go to stderr, the text
    to stdout (as the flow command's `logs`).

    \b
    Example: ledgerflow logs 1795700104055947269005/train --stderr > train.err
    """
    from .reads import log_tasks, screen_log

    ledger = open_ledger(ctx)
    parts = expand_pathspec(
        ledger, pathspec, "PATHSPEC", "a pathspec; expected Flow/RunId[/step[/TaskId]]", 4
    )
    if len(parts) < 2:
        raise BadParameter(f"{pathspec!r} names a flow; give a run, step or task: "
                           "Flow/RunId[/step[/TaskId]]", param_hint="PATHSPEC")  # fmt: skip
    streams = [s for s, wanted in (("stdout", only_stdout), ("stderr", only_stderr)) if wanted]
    for task in log_tasks(ledger, parts, attempt):
        origin = f", cloned from {task.origin_pathspec}" if task.origin_pathspec else ""
        click.echo(f"Logs of {printable(task.pathspec + origin)} (attempt {task.current_attempt})",
                   err=True)  # fmt: skip
        for stream in streams or ["stdout", "stderr"]:
            text = task.stdout if stream == "stdout" else task.stderr
            click.secho(stream, err=True, bold=True)
            if text:
                # --raw: as stored, colours too (click would strip them off a terminal)
                click.echo(text if raw else screen_log(text), nl=not text.endswith("\n"),
                           color=True if raw else None)  # fmt: skip


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with a list of steps.")
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str, as_json: bool) -> None:
    """Compare the artifacts of two runs, step by step: which changed, were added or were
    removed. Tasks are matched by step and foreach index (final attempts); values are
    compared by SHA-256, never loaded. RUN_A and RUN_B are Flow/RunId, or a bare run id
    when only one flow has it.

    \b
    Example: ledgerflow diff MyFlow/1795700104055947269005 1795700291078770596668
    """
    from .diff import diff_lines, diff_runs

    ledger = open_ledger(ctx)
    result = diff_runs(ledger, run_named(ledger, run_a, "RUN_A"),
                       run_named(ledger, run_b, "RUN_B"))  # fmt: skip
    if as_json:
        echo_json(result)
    else:
        for line in diff_lines(result):
            click.echo(line)


@cli.command()
@click.argument("text")
@click.option("--flow", default=None, help="Only artifacts of this flow.")
@click.option("--step", default=None, help="Only artifacts of this step.")
@click.option("--name", default=None, help="Only artifacts with this name.")
@click.option("--since", default=None, metavar="DATE", help="Only tasks finished since (ISO date).")
@click.option(
    "--kind",
    type=click.Choice(["artifact", "log", "exception"]),
    default=None,
    help="Only artifacts, only task logs (stdout, stderr) or only exceptions.",
)
@click.option("--limit", type=click.IntRange(min=1, max=10**9), default=20, show_default=True)
@_timeout_option("Stop a search that runs longer (a received ledger may make one slow).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of hits.")
@click.pass_context
def search(
    ctx: click.Context,
    text: str,
    flow: str | None,
    step: str | None,
    name: str | None,
    since: str | None,
    kind: str | None,
    limit: int,
    timeout: float,
    as_json: bool,
) -> None:
    """Full-text search over artifact names and values, task logs and exception text,
    best match first. A log or exception hit names the task and the stream.

    Plain words match as given (keyword-17 finds "keyword 17"); FTS5 syntax such as
    "a phrase", prefix*, AND/OR/NOT passes through. Never loads a value.

    \b
    Example: ledgerflow search "bad item" --kind exception --flow TrainFlow --limit 5
    """
    from ..fulltext import search as run_search

    path = ledger_path(ctx)
    if flow is not None:
        from .reads import require_flow

        require_flow(open_ledger(ctx), flow)
    hits = run_search(text, flow=flow, step=step, name=name, since=since, limit=limit,
                      kind=kind, ledger=path, timeout=timeout)  # fmt: skip
    if as_json:
        keys = ("pathspec", "flow", "run_id", "step", "task_id", "name", "snippet", "rank",
                "created_at", "kind")  # fmt: skip
        click.echo(json.dumps([{k: getattr(h, k) for k in keys} for h in hits], indent=2))
        return
    if not hits:
        click.echo("No matches.")
        return
    for hit in hits:
        where = hit.pathspec if hit.kind == "artifact" else f"{hit.pathspec} ({hit.name})"
        click.echo(printable(f"{where}\n    {hit.snippet}"))


@cli.command()
@click.argument("query")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="VALUE",
    help="A value for the next ? placeholder (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of row objects.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@_timeout_option("Stop a query that runs longer.")
@click.pass_context
def sql(
    ctx: click.Context,
    query: str,
    params: tuple[str, ...],
    as_json: bool,
    as_csv: bool,
    timeout: float,
) -> None:
    """Run a read-only SQL query over the ledger's views (runs, tasks, artifacts, ...).

    \b
    Example: ledgerflow sql "select run_id, value from artifacts where name = 'accuracy'"
    """
    from ..query import sql as run_sql

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    result = run_sql(query, params, ledger=ledger_path(ctx), timeout=timeout)
    if as_json:
        echo_json(list(result))
    elif as_csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")  # not CRLF: for shell pipelines
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        echo_table(result.columns, result.rows, raw=True)
        click.echo(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")


def main() -> None:
    cli(prog_name="ledgerflow")


# Sharing, upkeep and the web UI are commands of their own modules, added here: they import
# nothing from this module (imports run one way).
for _command in (*upkeep_cmds.COMMANDS, ui_cmd.ui, explain_cmd.explain):
    cli.add_command(_command)
