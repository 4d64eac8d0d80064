"""`ledgerflow export | import | rm | gc | doctor | stats`: sharing and upkeep commands.

Thin over `ledgerflow.sharing` and `ledgerflow.upkeep`; added to the `ledgerflow`
group by `cli/main.py` (COMMANDS).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from .common import UsageError, printable
from .ledger_args import expand_pathspec, ledger_path, open_ledger
from .trust_cmd import trust_cmd


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _report_copy(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2))
        return
    for spec in report.copied:
        click.echo(f"copied   {printable(spec)}")
    for spec in report.already_present:
        click.echo(f"present  {printable(spec)} (identical, skipped)")
    for spec in report.conflicts:
        click.echo(f"CONFLICT {printable(spec)}: same run id, different content; not overwritten",
                   err=True)  # fmt: skip
    click.echo(f"{len(report.copied)} run(s) copied, {report.blobs_copied} blob(s) "
               f"({_human(report.bytes_copied)}) written")  # fmt: skip


@click.command(name="export")
@click.argument("pathspecs", nargs=-1, required=True)
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new ledger file to write (must not exist).",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_context
def export_cmd(ctx: click.Context, pathspecs: tuple[str, ...], to: str, as_json: bool) -> None:
    """Write runs (Flow/RunId) or whole flows (Flow) to a new, self-contained ledger file
    holding only the blobs they use.

    Example: ledgerflow export TrainFlow/1795699100562945823027 --to results.db
    """
    from ..progress import Counter
    from ..sharing import export_runs

    ledger = open_ledger(ctx)
    specs = [_run_or_flow(ledger, p) for p in pathspecs]
    _report_copy(export_runs(specs, to, ledger=ledger, progress=Counter("exporting runs")),
                 as_json)  # fmt: skip


@click.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_context
def import_cmd(ctx: click.Context, file: str, as_json: bool) -> None:
    """Merge the runs of another ledger file into this one. Runs keep their ids; blobs
    already here are not copied again; importing twice changes nothing; a run id that
    exists with different content is reported (exit 1), never overwritten.

    Example: ledgerflow --db mine.db import results-from-alice.db
    """
    from ..ledger import Ledger
    from ..location import resolve_ledger_path

    path = resolve_ledger_path(ctx.find_root().obj["db"])
    from ..progress import Counter
    from ..sharing import import_ledger

    report = import_ledger(file, ledger=Ledger.open(path), progress=Counter("importing runs"))
    _report_copy(report, as_json)
    if report.conflicts:
        sys.exit(1)


@click.command()
@click.argument("pathspecs", nargs=-1, required=True)
@click.option(
    "--older-than",
    default=None,
    metavar="DATE",
    help="Only runs started before this date (ISO, e.g. 2026-11-01).",
)
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=None,
    help="Keep the newest N runs of each flow; delete the rest.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the runs that would be deleted and the bytes gc would then free.",
)
@click.option("--yes", is_flag=True, help="Do not ask before deleting more than one run.")
@click.pass_context
def rm(
    ctx: click.Context,
    pathspecs: tuple[str, ...],
    older_than: str | None,
    keep: int | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Delete runs (Flow/RunId or a bare run id), or a flow's runs (Flow) older than a date
    or beyond the newest N. A running run is never deleted. Asks before deleting more than
    one run (--yes does not ask). Blobs stay until `ledgerflow gc`.

    Example: ledgerflow rm TrainFlow --keep 10 --dry-run
    """
    from ..upkeep import freeable
    from ..upkeep import rm as remove

    ledger = open_ledger(ctx)
    specs = [_run_or_flow(ledger, p) for p in pathspecs]
    planned = remove(ledger, specs, older_than=older_than, keep=keep, dry_run=True)
    if dry_run or (len(planned) > 1 and not yes):
        for spec in planned:
            click.echo(f"would delete {printable(spec)}")
        blobs, size = freeable(ledger, planned)
        click.echo(f"{len(planned)} run(s) would be deleted; `ledgerflow gc` would then free "
                   f"{blobs} blob(s), {_human(size)} stored")  # fmt: skip
        if dry_run or not planned:
            return
        if not _interactive():
            raise UsageError(f"rm would delete {len(planned)} runs; pass --yes to delete them "
                             "without asking")  # fmt: skip
        click.confirm(f"Delete these {len(planned)} runs?", abort=True)
    deleted = remove(ledger, specs, older_than=older_than, keep=keep)
    for spec in deleted:
        click.echo(f"deleted {printable(spec)}")
    click.echo(f"{len(deleted)} run(s) deleted; `ledgerflow gc` reclaims their space")


def _interactive() -> bool:
    """Someone at a terminal can answer a question (else rm refuses and names --yes)."""
    return sys.stdin.isatty()


def _run_or_flow(ledger: Any, text: str) -> str:
    """'Flow' or 'Flow/RunId', checked (the closest flows named on a typo), with a bare run
    id expanded."""
    return "/".join(
        expand_pathspec(
            ledger, text, "PATHSPEC", "a flow or run; expected Flow, Flow/RunId or a run id", 2
        )
    )


@click.command()
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print how many blobs would be deleted and their stored bytes; delete nothing.",
)
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Delete blobs no run references any more, then reclaim the space (VACUUM). Refuses
    while a run is in progress.

    Example: ledgerflow gc --dry-run
    """
    from ..upkeep import freeable
    from ..upkeep import gc as collect

    ledger = open_ledger(ctx)
    if dry_run:
        blobs, size = freeable(ledger)
        click.echo(f"{blobs} blob(s) would be deleted, {_human(size)} stored (the file shrinks "
                   "by about that much)")  # fmt: skip
        return
    started = time.monotonic()
    if sys.stderr.isatty():  # the delete and VACUUM are single statements: say what runs
        click.echo("deleting unused blobs, then reclaiming the space (VACUUM)...", err=True)
    report = collect(ledger)
    click.echo(f"{report.blobs_deleted} blob(s) deleted, {_human(report.bytes_freed)} freed "
               f"in {time.monotonic() - started:.1f}s")  # fmt: skip


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Fix what is safe to fix: mark dead runs crashed, rebuild the search index.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_context
def doctor(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check the ledger: SQLite integrity, every blob's SHA-256, dangling references, runs
    left running by a dead process, the search index. Exit 0 if healthy, 1 if not. Never
    unpickles anything.

    Example: ledgerflow --db received.db doctor
    """
    from ..ledger import Ledger
    from ..progress import Counter
    from ..upkeep import doctor as check

    path = ledger_path(ctx)
    from ..upkeep import dead_runs, marked_crashed

    dead = dead_runs(path) if repair else []  # a writer's open marks them crashed: say so
    ledger = Ledger.open(path) if repair else Ledger.open(path, readonly=True)
    report = check(ledger, repair=repair, progress=Counter("checking blobs"))
    report.repaired[:0] = marked_crashed(ledger, dead)
    if as_json:
        click.echo(json.dumps({"healthy": report.healthy, "problems": report.problems,
                               "repaired": report.repaired,
                               "blobs_checked": report.blobs_checked,
                               "damaged_blobs": [{"sha": sha, "used_by": users} for sha, users
                                                 in report.damaged_blobs.items()]},
                              indent=2))  # fmt: skip
    else:
        for problem in report.problems:
            click.echo(f"problem: {printable(problem)}")
        for fix in report.repaired:
            click.echo(f"repaired: {printable(fix)}")
        verdict = "healthy" if report.healthy else f"{len(report.problems)} problem(s)"
        click.echo(f"{ledger.path}: {verdict} ({report.blobs_checked} blobs checked)")
    if not report.healthy and not (repair and report.repaired and _healthy_now(ledger)):
        sys.exit(1)


def _healthy_now(ledger: Any) -> bool:
    from ..upkeep import doctor as check

    return check(ledger).healthy


@click.command()
@click.option("--json", "as_json", is_flag=True, help="All figures as one JSON object.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts and sizes: runs, tasks, artifacts; logical vs unique vs stored bytes (dedup and
    compression ratios); per flow; the largest artifacts.

    Example: ledgerflow stats --json
    """
    from ..ledger import Ledger
    from ..upkeep import stats as figures

    s = figures(Ledger.open(ledger_path(ctx), readonly=True))
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(f"{s['ledger']}: {_human(s['file_bytes'])} on disk")
    click.echo(f"{s['runs']} runs, {s['tasks']} tasks, {s['artifacts']} artifacts, "
               f"{s['blobs']} unique blobs")  # fmt: skip
    click.echo(f"artifacts: logical {_human(s['logical_bytes'])} -> unique {_human(s['unique_bytes'])} "
               f"(dedup x{s['dedup_ratio']}) -> stored {_human(s['stored_bytes'])} "
               f"(zstd x{s['compression_ratio']})")  # fmt: skip
    _echo_log_figures(s)
    for flow in s["flows"]:
        click.echo(f"  {printable(flow['flow'])}: {flow['runs']} runs, {flow['tasks']} tasks, "
                   f"{_human(flow['artifact_bytes'])} of artifacts")  # fmt: skip
    if s["largest_artifacts"]:
        click.echo("largest artifacts:")
        for art in s["largest_artifacts"]:
            click.echo(
                f"  {_human(art['size']):>9}  {printable(art['pathspec'])}  "
                f"({printable(art['type'])})"
            )


COMMANDS = (export_cmd, import_cmd, rm, gc, doctor, stats, trust_cmd)


def _echo_log_figures(s: dict[str, Any]) -> None:
    """`stats`: the logs' line (what tasks printed, as stored), apart from the artifacts'."""
    logs = s.get("logs")
    if logs:
        click.echo(f"logs: {_human(logs['logical_bytes'])} printed -> stored "
                   f"{_human(logs['stored_bytes'])} (compressed x{logs['compression_ratio']}, "
                   f"{logs['pieces']} pieces)")  # fmt: skip
    unused = s.get("artifact_bytes", {}).get("unreferenced_bytes")
    if unused:
        click.echo(f"unreferenced blobs: {_human(unused)} (`ledgerflow gc` frees them)")
