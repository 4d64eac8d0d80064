"""The `ledgerflow` command: look at a ledger from the shell. Thin over the library."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .. import __version__
from ..exceptions import LedgerflowError


class _Group(click.Group):
    """Library errors become one line and exit 1; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerflowError as e:
            if ctx.params.get("debug"):
                raise
            click.echo(f"Error: {e}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--db", default=None, metavar="PATH",
              help="Ledger file (default: $LEDGERFLOW_DB, else the nearest ledgerflow.db).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, prog_name="ledgerflow")
@click.pass_context
def cli(ctx: click.Context, db: str | None, debug: bool) -> None:
    """Browse the runs, tasks and artifacts kept in a ledgerflow ledger.

    Example: ledgerflow --db results.db runs
    """
    ctx.obj = {"db": db}


def _ledger_path(ctx: click.Context) -> Any:
    """The ledger file this command reads; it must exist (commands never create one)."""
    from ..location import resolve_ledger_path

    path = resolve_ledger_path(ctx.find_root().obj["db"])
    if not path.exists():
        raise click.ClickException(
            f"no ledger at {path}; run a flow first or pass --db PATH of an existing ledger"
        )
    return path


def _ledger(ctx: click.Context) -> Any:
    from ..ledger import Ledger

    return Ledger.open(_ledger_path(ctx))


@cli.command()
@click.argument("flow", required=False)
@click.option("--status", type=click.Choice(["running", "succeeded", "failed", "crashed"]))
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run, in a list.")
@click.pass_context
def runs(ctx: click.Context, flow: str | None, status: str | None, limit: int,
         as_json: bool) -> None:
    """List runs, newest first.

    Example: ledgerflow runs MyFlow --status failed --limit 5
    """
    ledger = _ledger(ctx)
    where, params = [], []
    if flow:
        where.append("flow = ?")
        params.append(flow)
    if status:
        where.append("status = ?")
        params.append(status)
    sql = "select flow, run_id, status, created_at, duration_s, tags from runs"
    if where:
        sql += " where " + " and ".join(where)
    sql += " order by created_at desc limit ?"
    rows = ledger.execute(sql, (*params, limit)).fetchall()
    records = [
        {"flow": r[0], "run_id": r[1], "status": r[2], "created_at": r[3],
         "duration_s": r[4], "tags": json.loads(r[5] or "[]")}
        for r in rows
    ]  # fmt: skip
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("No runs.")
        return
    click.echo(f"{'FLOW':<24} {'RUN ID':<24} {'STATUS':<10} {'STARTED':<27} DURATION")
    for r in records:
        duration = "" if r["duration_s"] is None else f"{r['duration_s']:.3f}s"
        click.echo(f"{r['flow']:<24} {r['run_id']:<24} {r['status']:<10} "
                   f"{r['created_at']:<27} {duration}")


@cli.command()
@click.argument("text")
@click.option("--flow", default=None, help="Only artifacts of this flow.")
@click.option("--step", default=None, help="Only artifacts of this step.")
@click.option("--name", default=None, help="Only artifacts with this name.")
@click.option("--since", default=None, metavar="DATE", help="Only tasks finished since (ISO date).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of hits.")
@click.pass_context
def search(ctx: click.Context, text: str, flow: str | None, step: str | None,
           name: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Full-text search over artifact names and values, best match first.

    Plain words match as given (keyword-17 finds "keyword 17"); FTS5 syntax such as
    "a phrase", prefix*, AND/OR/NOT passes through. Never loads a value.

    Example: ledgerflow search resnet50 --flow TrainFlow --limit 5
    """
    from ..fulltext import search as run_search

    hits = run_search(text, flow=flow, step=step, name=name, since=since, limit=limit,
                      ledger=_ledger_path(ctx))  # fmt: skip
    if as_json:
        keys = ("pathspec", "flow", "run_id", "step", "task_id", "name", "snippet", "rank",
                "created_at")  # fmt: skip
        click.echo(json.dumps([{k: getattr(h, k) for k in keys} for h in hits], indent=2))
        return
    if not hits:
        click.echo("No matches.")
        return
    for hit in hits:
        click.echo(f"{hit.pathspec}\n    {hit.snippet}")


@cli.command()
@click.argument("query")
@click.option("--param", "-p", "params", multiple=True, metavar="VALUE",
              help="A value for the next ? placeholder (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of row objects.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@click.pass_context
def sql(ctx: click.Context, query: str, params: tuple[str, ...], as_json: bool,
        as_csv: bool) -> None:
    """Run a read-only SQL query over the ledger's views (runs, tasks, artifacts, ...).

    Example: ledgerflow sql "select run_id, value from artifacts where name = 'accuracy'"
    """
    from ..query import sql as run_sql

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    result = run_sql(query, params, ledger=_ledger_path(ctx))
    if as_json:
        click.echo(json.dumps(list(result), indent=2, default=_json_default))
    elif as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        _print_table(result.columns, result.rows)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def _print_table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def main() -> None:
    cli(prog_name="ledgerflow")
