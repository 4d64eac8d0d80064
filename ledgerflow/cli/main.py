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


def _ledger(ctx: click.Context) -> Any:
    from ..ledger import Ledger
    from ..location import resolve_ledger_path

    path = resolve_ledger_path(ctx.find_root().obj["db"])
    if not path.exists():
        raise click.ClickException(
            f"no ledger at {path}; run a flow first or pass --db PATH of an existing ledger"
        )
    return Ledger.open(path)


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


def main() -> None:
    cli(prog_name="ledgerflow")
