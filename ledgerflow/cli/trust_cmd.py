"""`ledgerflow trust`: give, list and revoke trust — in a file someone sent (its runs as they
are now), or in the source of runs imported into one of your ledgers. Thin over
`ledgerflow.trust_store` and `ledgerflow.trust_sources`; added to the `ledgerflow` group by
`cli/main.py` (through upkeep_cmds.COMMANDS).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..exceptions import LedgerflowError
from .common import UsageError, printable


@click.command(name="trust")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--source", default=None, metavar="ID",
              help="Trust the runs imported into this ledger (--db) from the ledger with this "
              "id (as a refusal or --list names it).")  # fmt: skip
@click.option("--list", "listing", is_flag=True,
              help="List the files you trust and the sources of this ledger's imported runs.")  # fmt: skip
@click.option("--revoke", is_flag=True, help="Stop trusting FILE, or the --source.")
@click.option("--json", "as_json", is_flag=True, help="--list as JSON.")
@click.pass_context
def trust_cmd(ctx: click.Context, file: str | None, source: str | None, listing: bool,
              revoke: bool, as_json: bool) -> None:  # fmt: skip
    """Trust where runs came from: their pickled values may then load (unpickling runs
    code). `trust FILE` trusts a ledger file you received, its runs as they are now (a run
    changed or added later needs trusting again; see trust_store.py); runs imported from it
    into your ledgers are trusted too, before or after the import. `--source ID` trusts the
    runs already imported into this ledger from a source. Your own ledgers need no trust.

    \b
    Examples: ledgerflow trust ~/Downloads/results.db
              ledgerflow trust --source 3f2a9c0e7d1b4e55a0c2f1e9d8b7a6c5
              ledgerflow trust --list
              ledgerflow trust --revoke ~/Downloads/results.db
    """
    from ..location import resolve_ledger_path

    chosen = [name for name, given in (("FILE", file), ("--source", source),
                                       ("--list", listing)) if given]  # fmt: skip
    if len(chosen) != 1:
        raise UsageError("give one of FILE, --source ID or --list (with --revoke: FILE or "
                         "--source ID)")  # fmt: skip
    if revoke and listing:
        raise UsageError("--revoke takes FILE or --source ID, not --list")
    db = ctx.find_root().obj["db"]
    if listing:
        _list(resolve_ledger_path(db), as_json)
    elif source is not None:
        _source(resolve_ledger_path(db), source, revoke)
    elif file is not None:
        _file(file, resolve_ledger_path(db), revoke)


def _file(file: str, current: Path, revoke: bool) -> None:
    from ..ledger import Ledger
    from ..location import existing_ledger
    from ..sharing import imported_runs
    from ..trust_store import remember_file, revoke_file, run_trusted

    if revoke:
        removed = revoke_file(file)
        if not removed:
            raise UsageError(f"{printable(file)} is not a file you trust; `ledgerflow trust "
                             "--list` shows them")  # fmt: skip
        click.echo(f"No longer trusted: {printable(str(Path(file).absolute()))} (runs already "
                   "imported from it were trusted by their source: `ledgerflow trust --list`)")  # fmt: skip
        return
    path = existing_ledger(file, "pass the path of a ledger file")
    count = remember_file(Ledger.open(path, readonly=True))
    click.echo(f"Trusted {printable(str(path))}: the pickled values of its {count} run(s), "
               "as they are now, load from now on.")  # fmt: skip
    if current.exists() and current != Path(path).absolute():
        try:
            mine = Ledger.open(current, reader=True)
            now = [r["pathspec"] for r in imported_runs(mine) if run_trusted(mine, r["pk"])]
        except LedgerflowError:  # the current ledger is not one: nothing imported to tell
            now = []
        if now:
            click.echo(f"{len(now)} run(s) imported into {printable(str(current))} load too.")


def _source(current: Path, source: str, revoke: bool) -> None:
    from ..ledger import Ledger
    from ..location import existing_ledger
    from ..trust_sources import set_source_trust

    path = existing_ledger(current, "pass the ledger the runs were imported into with --db")
    changed = set_source_trust(Ledger.open(path), source, not revoke)
    for spec in changed:
        click.echo(f"{'untrusted' if revoke else 'trusted'}  {printable(spec)}")
    click.echo(f"{len(changed)} run(s) imported from {printable(source)} "
               f"{'no longer trusted' if revoke else 'trusted'}")  # fmt: skip


def _list(current: Path, as_json: bool) -> None:
    from ..ledger import Ledger
    from ..trust_sources import sources
    from ..trust_store import trusted_files

    files = [{"path": e["path"], "ledger_id": e.get("ledger_id", ""), "runs": len(e["runs"]),
              "trusted_at": e.get("trusted_at", ""), "exists": Path(e["path"]).exists()}
             for e in trusted_files()]  # fmt: skip
    here: list[dict[str, Any]] = []
    if current.exists():
        try:
            here = sources(Ledger.open(current, reader=True))
        except LedgerflowError:  # not a ledger: only the trusted files to list
            here = []
    if as_json:
        click.echo(json.dumps({"files": files, "ledger": str(current), "sources": here},
                              indent=2))  # fmt: skip
        return
    click.echo("Trusted files:" if files else "No trusted files.")
    for f in files:
        gone = "" if f["exists"] else " (no longer there)"
        click.echo(f"  {printable(f['path'])}{gone}: {f['runs']} run(s), ledger "
                   f"{printable(str(f['ledger_id']))}, since {printable(str(f['trusted_at']))}")  # fmt: skip
    if not here:
        return
    click.echo(f"Sources of runs imported into {printable(str(current))}:")
    for s in here:
        click.echo(f"  {printable(s['source'] or '(none given)')}: {s['runs']} run(s), "
                   f"{s['trusted']} trusted, last imported {printable(s['imported_at'])}")  # fmt: skip
