"""What the `ledgerflow` commands share: the ledger they read (which must exist), the
pathspecs they name (checked, a bare run id expanded) and JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .common import BadParameter

_FIX = "run a flow first or pass --db PATH of an existing ledger"


def ledger_path(ctx: click.Context, wanted: str = "") -> Path:
    """The ledger file this command reads: --db, else the default location (the last step
    of ledger_choice.py's rule); it must exist (commands never create one).
    `wanted` names what the command looks for, for the error message."""
    from ..location import existing_ledger, resolve_ledger_path

    looked_for = f"(looking for {wanted}) " if wanted else ""
    return existing_ledger(resolve_ledger_path(ctx.find_root().obj["db"]), looked_for + _FIX)


def open_ledger(ctx: click.Context) -> Any:
    """The command's ledger, opened to read (reading never writes)."""
    from ..ledger import Ledger

    return Ledger.open(ledger_path(ctx), reader=True)


def echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def run_named(ledger: Any, text: str, hint: str) -> tuple[str, str]:
    """(flow, run_id) for 'Flow/RunId' or a bare run id that only one flow has."""
    expected = "a run; expected Flow/RunId or a run id"
    parts = expand_pathspec(ledger, text, hint, expected, 2)
    if len(parts) != 2:
        raise BadParameter(f"{text!r} is not {expected}", param_hint=hint)
    return parts[0], parts[1]


def expand_pathspec(ledger: Any, text: str, hint: str, expected: str,
                    most: int) -> list[str]:  # fmt: skip
    """The parts of a pathspec, checked: at most `most` non-empty parts, the flow known
    (else the closest names), and a leading bare run id (all digits: a flow is a class name,
    so it cannot be one) replaced by Flow/RunId when only one flow has that run."""
    from ..client import Run
    from ..exceptions import MetaflowNotFound
    from .common import all_namespaces
    from .reads import flows_with_run, require_flow

    parts = text.split("/")
    if len(parts) > most or not all(parts):
        raise BadParameter(f"{text!r} is not {expected}", param_hint=hint)
    if parts[0].isdigit():
        flows = flows_with_run(ledger, parts[0])
        if not flows:
            raise MetaflowNotFound(f"no flow in ledger {ledger.path} has a run '{parts[0]}'")
        if len(flows) > 1:
            raise BadParameter(
                f"run id {parts[0]!r} is in flows {', '.join(flows)}; write Flow/{text}",
                param_hint=hint,
            )
        parts = [flows[0], *parts]
        if len(parts) > most:
            raise BadParameter(f"{text!r} is not {expected}", param_hint=hint)
    require_flow(ledger, parts[0], text)
    if len(parts) >= 2:
        with all_namespaces():
            Run("/".join(parts[:2]), ledger=ledger)  # says which runs there are if it is not
    return parts
