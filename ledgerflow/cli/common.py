"""What both command lines share: click's side of error handling, reading every namespace,
printable text, and the one table printer."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from .errors import call_reporting_errors, printable

# What click reports itself (usage errors exit 2, --help and --version exit 0, Abort 1).
CLICK_OWN = (click.ClickException, click.exceptions.Exit, click.Abort)


@contextlib.contextmanager
def all_namespaces() -> Iterator[None]:
    """Client objects built inside see every run, whoever ran it (`namespace(None)`).

    A command line names runs explicitly, so the default 'user:<you>' filter would only hide
    them. The previous setting is put back afterwards because the `ledgerflow` command can
    run inside another program's process (tests, notebooks) whose namespace is its own.
    """
    from ..client.context import every_namespace

    with every_namespace():
        yield


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: bool = False) -> None:
    """The one table printer: left-aligned columns two spaces apart, no trailing spaces,
    every cell printable and on one line. Headers are in capitals and None is blank, unless
    `raw` (SQL results: column names as written, NULL, cells cut at 60 characters, bytes as
    their size)."""
    cells = [[_cell(v, raw) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    shown = headers if raw else [h.upper() for h in headers]
    click.echo("  ".join(h.ljust(w) for h, w in zip(shown, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any, raw: bool = False) -> str:
    if value is None:
        return "NULL" if raw else ""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple, frozenset, set)) and not raw:
        return printable(", ".join(str(v) for v in value))
    text = printable(str(value).replace("\n", " "))
    return text[:57] + "..." if raw and len(text) > 60 else text


def printable_doc(doc: Any) -> Any:
    """A JSON-like document with every string made printable (for text output)."""
    if isinstance(doc, str):
        return printable(doc)
    if isinstance(doc, dict):
        return {k: printable_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [printable_doc(v) for v in doc]
    return doc


def clip(text: str, width: int) -> str:
    """One line of at most `width` characters, '...' marking a cut."""
    text = printable(text.replace("\n", " "))
    return text if len(text) <= width else text[: width - 3] + "..."


class UsageError(click.UsageError):
    """A usage mistake explained in one line (exit 2), without click's usage banner."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


class BadParameter(click.BadParameter):
    """A malformed value (pathspec, run id, tag) on the command line: one line, exit 2."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def errors_as_lines(func: Callable[..., Any]) -> Callable[..., Any]:
    """Report library errors as `cli/errors.py` does, for one command of a group."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        return call_reporting_errors(lambda: func(*args, **kwargs), debug, passthrough=CLICK_OWN)

    return wrapper
