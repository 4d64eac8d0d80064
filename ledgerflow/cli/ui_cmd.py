"""`ledgerflow ui`: serve the ledger to a local web browser. Added to the `ledgerflow`
group by `cli/main.py`."""

from __future__ import annotations

import click

from .ledger_args import ledger_path


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the default lets only this machine connect.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8484,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Let the artifact page load pickled values written on another machine "
    "(loading a pickle runs code: only for ledgers you trust).",
)
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, trust: bool, verbose: bool) -> None:
    """Browse runs, tasks, logs, artifacts and cards in a web browser (read-only).

    \b
    Example: ledgerflow --db results.db ui --port 8484
    """
    from ..ui import make_server

    path = ledger_path(ctx)
    try:
        server, url = make_server(path, host, port, trust, quiet=not verbose)
    except OSError as e:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port"
        ) from None
    click.echo(f"ledgerflow ui: browsing {path} at {url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.server_close()
