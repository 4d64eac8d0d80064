"""`python flow.py card view|get|list`: the cards of a flow's tasks, as in Metaflow.

PATHSPEC is `STEP` (in the latest run), `RUN_ID/STEP` or `RUN_ID/STEP/TASK_ID`; `--id`,
`--type` and `--hash` choose among several cards.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from ..exceptions import MetaflowNotFound
from .common import UsageError, all_namespaces, errors_as_lines


def _choose(func: Any) -> Any:
    func = click.option(
        "--hash", "card_hash", default=None, help="SHA-256 of the card's HTML (a prefix is enough)."
    )(func)
    func = click.option("--type", "card_type", default=None, help="Type of the card.")(func)
    func = click.option("--id", "card_id", default=None, help="Id of the card.")(func)
    func = click.option(
        "--follow-resumed/--no-follow-resumed",
        default=True,
        help="For a task cloned by resume, show its origin's cards.",
    )(func)
    return func


def add_card_commands(cli: click.Group, flow_cls: type, script: str) -> None:
    """Add the `card` group (view, get, list) to a flow's command line."""
    flow = flow_cls.__name__

    @cli.group(help=f"View, save or list the cards of {flow}'s tasks.\n\n"
                    f"\b\nExample: {script} card view start")  # fmt: skip
    def card() -> None:
        pass

    @card.command(
        help="Write a task's card to a temporary HTML file and open it in the web "
        "browser.\n\n"
        f"\b\nExample: {script} card view 1795700104055947269005/start/1"
    )
    @click.argument("pathspec", metavar="[RUN_ID/]STEP[/TASK_ID]")
    @_choose
    @errors_as_lines
    def view(pathspec: str, **choice: Any) -> None:
        found = _one_card(flow, pathspec, choice)
        click.echo(found.view())

    @card.command(
        help="Print a task's card (its HTML), or save it to FILE.\n\n"
        f"\b\nExample: {script} card get start report.html --type default"
    )
    @click.argument("pathspec", metavar="[RUN_ID/]STEP[/TASK_ID]")
    @click.argument(
        "path", metavar="[FILE]", required=False, type=click.Path(dir_okay=False, writable=True)
    )
    @_choose
    @errors_as_lines
    def get(pathspec: str, path: str | None, **choice: Any) -> None:
        html = _one_card(flow, pathspec, choice).get()
        if path is None:
            click.echo(html, nl=False)
            return
        tmp = f"{path}.{os.getpid()}.tmp"  # never a half-written file under the final name
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(html)
        os.replace(tmp, path)

    @card.command(
        "list",
        help="List the cards of a task, of a step's tasks, or (no "
        "PATHSPEC) of the latest run.\n\n"
        f"\b\nExample: {script} card list 1795700104055947269005 --as-json",
    )
    @click.argument("pathspec", metavar="[RUN_ID[/STEP[/TASK_ID]]]", required=False)
    @_choose
    @click.option("--as-json", is_flag=True, help="Print the cards as a JSON list.")
    @errors_as_lines
    def list_cards(pathspec: str | None, as_json: bool, **choice: Any) -> None:
        cards = [c for task in _tasks_for_list(flow, pathspec) for c in _cards(task, choice)]
        rows = [{"pathspec": c.pathspec, "type": c.type, "id": c.id, "hash": c.hash,
                 "error": c.error} for c in cards]  # fmt: skip
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo("No cards.")
            return
        from .common import clip, echo_table

        echo_table(["task", "type", "id", "hash", "error"],
                   [(r["pathspec"], r["type"], r["id"], (r["hash"] or "")[:12],
                     clip(r["error"] or "", 60)) for r in rows])  # fmt: skip


def _cards(task: Any, choice: dict[str, Any]) -> list[Any]:
    from ..cards.exception import CardNotPresentException
    from ..client.cards import get_cards

    try:
        cards = get_cards(task, id=choice.get("card_id"), type=choice.get("card_type"),
                          follow_resumed=choice.get("follow_resumed", True))  # fmt: skip
    except CardNotPresentException:
        return []  # a task without cards, among others that may have some
    wanted = choice.get("card_hash")
    return [c for c in cards if not wanted or (c.hash or "").startswith(wanted)]


def _one_card(flow: str, pathspec: str, choice: dict[str, Any]) -> Any:
    tasks = _tasks_for(flow, pathspec)
    cards = [c for task in tasks for c in _cards(task, choice)]
    if not cards:
        raise MetaflowNotFound(f"no card matches {flow}/{_described(pathspec, choice)}; see "
                               "`card list` for the cards there")  # fmt: skip
    if len({(c.pathspec, c.hash) for c in cards}) > 1:  # identical cards: any one will do
        raise UsageError(_many_cards(cards))
    return cards[0]


def _many_cards(cards: list[Any]) -> str:
    """What to add to the command when several cards match: the options that tell these
    cards apart (a task's pathspec only when they belong to different tasks)."""
    listing = ", ".join(f"{c.pathspec} type={c.type} id={c.id} hash={(c.hash or '')[:12]}"
                        for c in cards[:5])  # fmt: skip
    ways = []
    if len({c.pathspec for c in cards}) > 1:
        ways.append("a full RUN_ID/STEP/TASK_ID")
    if len({c.id for c in cards}) > 1:
        ways.append("--id")
    if len({c.type for c in cards}) > 1:
        ways.append("--type")
    ways.append("--hash")  # content hashes tell apart even two identical @card
    return (
        f"{len(cards)} cards match ({listing}); choose one with "
        f"{', '.join(ways[:-1]) + ' or ' if len(ways) > 1 else ''}{ways[-1]}"
    )


def _described(pathspec: str, choice: dict[str, Any]) -> str:
    extra = [f"{k.split('_')[1]}={v}" for k, v in choice.items()
             if k.startswith("card_") and v is not None]  # fmt: skip
    return pathspec + (f" ({', '.join(extra)})" if extra else "")


def _latest_run_id(flow: str) -> str:
    from .flow_inspect import _flow

    latest = _flow(flow).latest_run
    if latest is None:
        raise MetaflowNotFound(f"{flow} has no runs in this ledger; run it first")
    return str(latest.id)


def _tasks_for(flow: str, pathspec: str) -> list[Any]:
    """Tasks named by STEP (latest run), RUN_ID/STEP or RUN_ID/STEP/TASK_ID."""
    from .flow_inspect import _tasks

    with all_namespaces():
        if pathspec and "/" not in pathspec:
            pathspec = f"{_latest_run_id(flow)}/{pathspec}"
        return _tasks(flow, pathspec, None)


def _tasks_for_list(flow: str, pathspec: str | None) -> list[Any]:
    """Every task of a run (default: the latest), or the tasks `_tasks_for` names."""
    from .flow_inspect import _run

    if pathspec and "/" in pathspec:
        return _tasks_for(flow, pathspec)
    with all_namespaces():
        run = _run(flow, pathspec or _latest_run_id(flow))
        return [task for step in run for task in step]
