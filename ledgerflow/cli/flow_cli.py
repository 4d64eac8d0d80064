"""`python flow.py COMMAND`: the command line every flow gets, as in Metaflow.

Thin: parse, call the library, print. Library errors become one line and exit code 1;
usage errors exit 2 (click); `--debug` shows tracebacks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from .. import __version__
from ..exceptions import MetaflowTaggingError
from ..parameters import flow_parameters
from .common import BadParameter
from .run_flow import (
    EXECUTOR_NAMES,
    RunOptions,
    execute_run,
    validated_graph,
)
from .common import errors_as_lines as _errors_as_lines



def main(flow_cls: type, args: list[str] | None = None) -> NoReturn:
    """Run the flow command line with sys.argv (or args) and exit."""
    cli = build_cli(flow_cls)
    cli.main(args=args, prog_name=_prog_name(), standalone_mode=True)  # exits
    sys.exit(0)


def _prog_name() -> str:
    return f"python {os.path.basename(sys.argv[0])}"


def _script(flow_cls: type) -> str:
    """'python my_flow.py', for the examples in help texts."""
    import inspect

    try:
        path = inspect.getsourcefile(flow_cls) or sys.argv[0]
    except TypeError:
        path = sys.argv[0]
    return f"python {os.path.basename(path)}"


def _checked_tags(
    ctx: click.Context, param: click.Parameter, tags: tuple[str, ...]
) -> tuple[str, ...]:
    """`--tag` values, validated as the Client API validates tags, before any run exists."""
    from ..tags import MAX_USER_TAG_SET_SIZE, validate_tag

    try:
        checked = tuple(validate_tag(t) for t in tags)
    except MetaflowTaggingError as e:
        raise BadParameter(str(e), ctx=ctx, param=param) from None
    if len(set(checked)) > MAX_USER_TAG_SET_SIZE:
        raise BadParameter(
            f"at most {MAX_USER_TAG_SET_SIZE} tags per run, got {len(set(checked))}",
            ctx=ctx, param=param,
        )  # fmt: skip
    return checked


def build_cli(flow_cls: type) -> click.Group:
    name = flow_cls.__name__
    script = _script(flow_cls)

    @click.group(help=f"Run and inspect the flow {name}.\n\n\b\nExample: {script} run")
    @click.option("--db", "db", default=None, metavar="PATH",
                  help="Ledger file (default: $LEDGERFLOW_DB, else the nearest ledgerflow.db).")
    @click.option("--quiet", is_flag=True, help="Print only errors and the run id.")
    @click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
    @click.option("--no-pylint", is_flag=True, hidden=True, help="Accepted for Metaflow compatibility.")
    @click.option("--metadata", hidden=True, default=None)
    @click.option("--datastore", hidden=True, default=None)
    @click.option("--environment", hidden=True, default=None)
    @click.version_option(__version__, prog_name="ledgerflow")
    @click.pass_context
    def cli(ctx: click.Context, /, db: str | None, quiet: bool, debug: bool, **_: Any) -> None:
        ctx.obj = {"db": db, "quiet": quiet}

    @cli.command(help=f"Validate the graph of {name} without running it.\n\n"
                      f"\b\nExample: {script} check")  # fmt: skip
    @_errors_as_lines
    def check() -> None:
        validated_graph(flow_cls)
        click.echo(f"The graph of {name} looks good.")

    @cli.command(help=f"Show the steps of {name} and how they connect.\n\n"
                      f"\b\nExample: {script} show")  # fmt: skip
    @_errors_as_lines
    def show() -> None:
        graph = validated_graph(flow_cls)
        click.echo(graph.describe())

    run_options = [
        click.option("--with", "with_decorators", multiple=True, metavar="DECORATOR",
                     help="Add a decorator to every step, e.g. --with retry or "
                          "--with retry:times=2 (repeatable)."),
        click.option("--tag", "tags", multiple=True, metavar="TAG", callback=_checked_tags,
                     help="Annotate this run with the given tag (repeatable)."),
        click.option("--max-workers", type=click.IntRange(min=1), default=RunOptions.max_workers,
                     show_default=True,
                     help="Maximum number of tasks running at once."),
        click.option("--executor", type=click.Choice(EXECUTOR_NAMES), default=RunOptions.executor,
                     show_default=True, help="Where tasks run: threads, processes, or one by one."),
        click.option("--max-num-splits", type=click.IntRange(min=1),
                     default=RunOptions.max_num_splits,
                     show_default=True, help="Largest foreach allowed (a guard against mistakes)."),
        click.option("--run-id-file", type=click.Path(dir_okay=False), default=None,
                     help="Write the run id to this file once the run starts."),
    ]  # fmt: skip
    params = flow_parameters(flow_cls)

    def run_command(**kwargs: Any) -> None:
        _run(flow_cls, kwargs, params)

    command: Callable[..., Any] = _errors_as_lines(run_command)
    for option in reversed(run_options):
        command = option(command)
    for _, param in reversed(params):
        command = param.option()(command)
    cli.command(
        name="run",
        help=f"Run {name}, recording everything in the ledger.\n\n"
        f"\b\nExample: {script} run --tag nightly --max-workers 4",
    )(command)

    def resume_command(step_to_rerun: str | None, origin_run_id: str | None, **kwargs: Any) -> None:
        _resume(flow_cls, step_to_rerun, origin_run_id, kwargs, params)

    command = _errors_as_lines(resume_command)
    for option in reversed(run_options):
        command = option(command)
    command = click.option(
        "--origin-run-id", default=None,
        help="Run to resume (default: the latest run of this flow in the ledger).",
    )(command)  # fmt: skip
    command = click.argument("step_to_rerun", required=False)(command)
    cli.command(
        name="resume",
        help=f"Resume a previous run of {name}: successful tasks upstream of STEP_TO_RERUN (by "
        "default, of the failed steps) are cloned without running; the rest runs again.\n\n"
        f"\b\nExample: {script} resume train --origin-run-id 1795700104055947269005",
    )(command)

    from .flow_inspect import add_inspect_commands

    add_inspect_commands(cli, flow_cls, script)
    return cli


def _apply_with(flow_cls: type, options: dict[str, Any]) -> None:
    from ..decorators import apply_with
    from ..exceptions import LedgerflowError

    try:
        apply_with(flow_cls, list(options.get("with_decorators") or ()))
    except LedgerflowError as e:
        raise click.BadParameter(str(e), param_hint="'--with'") from None


def _run(flow_cls: type, options: dict[str, Any], params: list[tuple[str, Any]]) -> None:
    _apply_with(flow_cls, options)
    ctx = click.get_current_context()
    values = {}
    for attr, param in params:
        key = param.name.replace("-", "_")
        given = options.get(key)
        if given is None and _given_on_command_line(ctx, key):
            values[attr] = None  # an explicit JSON null, not "use the default"
            continue
        values[attr] = param.resolve(given)
        if param.required and values[attr] is None:
            raise click.MissingParameter(
                param_hint=f"'--{param.name}'", ctx=ctx, param_type="option"
            )
    validated_graph(flow_cls)
    _execute(flow_cls, values, options)


def _given_on_command_line(ctx: click.Context, key: str) -> bool:
    from click.core import ParameterSource

    return ctx.get_parameter_source(key) not in (None, ParameterSource.DEFAULT)


def _resume(
    flow_cls: type,
    step_to_rerun: str | None,
    origin_run_id: str | None,
    options: dict[str, Any],
    params: list[tuple[str, Any]],
) -> None:
    from ..ledger import Ledger
    from ..resume import latest_run_id, load_origin, steps_to_rerun

    _apply_with(flow_cls, options)
    graph = validated_graph(flow_cls)
    ledger = Ledger.open(click.get_current_context().find_root().obj["db"])
    run_id = origin_run_id or latest_run_id(ledger, flow_cls.__name__)
    origin = load_origin(ledger, flow_cls.__name__, run_id, [attr for attr, _ in params])
    rerun = steps_to_rerun(graph, step_to_rerun) if step_to_rerun else set()
    values = origin.parameter_values(ledger, params)
    _execute(flow_cls, values, options, origin=origin, rerun_steps=rerun)


def _execute(flow_cls: type, values: dict[str, Any], options: dict[str, Any], **resume: Any) -> None:
    root = click.get_current_context().find_root().obj
    run_options = RunOptions(
        db=root["db"],
        quiet=root["quiet"],
        executor=options["executor"],
        max_workers=options["max_workers"],
        max_num_splits=options["max_num_splits"],
        tags=list(options["tags"]),
        run_id_file=options.get("run_id_file"),
    )
    execute_run(flow_cls, values, run_options, **resume)
