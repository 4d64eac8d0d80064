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

from ..exceptions import MetaflowTaggingError
from ..parameters import flow_parameters
from ..version import __version__
from .common import BadParameter
from .common import errors_as_lines as _errors_as_lines
from .run_flow import (
    EXECUTOR_NAMES,
    RunOptions,
    execute_run,
    parameter_context,
    refuse_unsupported,
    validated_graph,
)


def main(flow_cls: type, args: list[str] | None = None) -> NoReturn:
    """Run the flow command line with sys.argv (or args) and exit."""
    refuse_unsupported(flow_cls)
    cli = build_cli(flow_cls)
    _end_without_collecting()
    cli.main(args=args, prog_name=_prog_name(), standalone_mode=True)  # exits
    sys.exit(0)


def _end_without_collecting() -> None:
    """As the process ends (after the run, and after every atexit handler registered later,
    the user's included), move every object out of the cyclic collector's sight: CPython's
    finalization would otherwise collect and free every module, class and function one by
    one, ~28 ms of every run's CPU and wall here (docs/performance.md), for memory the
    process is about to give back whole. What this skips is only what CPython never
    promises at exit (finalizers of objects still alive then); standard streams are still
    flushed, and the ledger's writes were committed when the run ended."""
    import atexit
    import gc

    atexit.register(gc.freeze)


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


def _metaflow_noops(f: Callable[..., Any]) -> Callable[..., Any]:
    """Metaflow's top-level options that mean nothing here, accepted (hidden) so scripts
    written for Metaflow run unchanged: `python flow.py --no-pylint --metadata=local ...`."""
    for option in reversed([
        click.option("--pylint/--no-pylint", default=True, hidden=True),
        click.option("--metadata", hidden=True, default=None),
        click.option("--datastore", hidden=True, default=None),
        click.option("--datastore-root", hidden=True, default=None),
        click.option("--package-suffixes", hidden=True, default=None),
        click.option("--event-logger", hidden=True, default=None),
        click.option("--monitor", hidden=True, default=None),
        click.option("--local-config-file", hidden=True, default=None),
        click.option("--force-rebuild-environments/--no-force-rebuild-environments",
                     default=False, hidden=True),
    ]):  # fmt: skip
        f = option(f)
    return f


def _config_options(flow_cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--config NAME FILE` and `--config-value NAME JSON`, as Metaflow adds them (before
    the command) to a flow with Configs."""

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        from ..configs import flow_configs

        configs = flow_configs(flow_cls)
        if not configs:
            return f
        names = ", ".join(c.name for _, c in configs)
        f = click.option("--config-value", "config_value", nargs=2, multiple=True,
                         metavar="NAME JSON",
                         help=f"A config's value as JSON text (configs: {names}).")(f)  # fmt: skip
        return click.option("--config", "config_file", nargs=2, multiple=True,
                            metavar="NAME FILE",
                            help=f"Read a config from FILE (configs: {names}).")(f)  # fmt: skip

    return add


def _settle_configs(flow_cls: type, files: Any, values: Any, debug: bool) -> None:
    """Give the flow its configs' values (from the options, else the defaults) before any
    command runs; a config that cannot be used is one line and exit 1."""
    from ..configs import apply_configs, settle_values
    from .common import CLICK_OWN
    from .errors import call_reporting_errors

    def settle() -> None:
        # Also without Configs: a config_expr() naming none must fail here, in one line.
        apply_configs(flow_cls, settle_values(flow_cls, files or (), values or ()))

    call_reporting_errors(settle, debug, passthrough=CLICK_OWN)


def _project_options(flow_cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--branch` and `--production`, as Metaflow adds them for a flow with @project."""

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        if "project" not in getattr(flow_cls, "_flow_decorators", {}):
            return f
        f = click.option("--production", is_flag=True, default=None,
                         help="Use the @project's production branch.")(f)  # fmt: skip
        return click.option(
            "--branch", default=None, help="Use this branch of the @project (default: user.<you>)."
        )(f)

    return add


def _set_project_env(branch: str | None, production: bool | None) -> None:
    """Hand --branch/--production to the tasks the way Metaflow's options read them from the
    environment ($METAFLOW_BRANCH, $METAFLOW_PRODUCTION), so every task process sees them."""
    if branch:
        os.environ["METAFLOW_BRANCH"] = branch
    if production:
        os.environ["METAFLOW_PRODUCTION"] = "1"


class _LazyGroup(click.Group):
    """A group whose rarer commands (tag, logs, dump, card) are added on first use, so a
    `run` does not import their modules; `loaders` add them."""

    loaders: list[Callable[[click.Group], None]]

    def _load(self) -> None:
        loaders, self.loaders = getattr(self, "loaders", []), []
        for load in loaders:
            load(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._load()
        return super().get_command(ctx, cmd_name)


def _inspect_commands(flow_cls: type, script: str) -> Callable[[click.Group], None]:
    def load(group: click.Group) -> None:
        from .flow_inspect import add_inspect_commands

        add_inspect_commands(group, flow_cls, script)

    return load


def _card_commands(flow_cls: type, script: str) -> Callable[[click.Group], None]:
    def load(group: click.Group) -> None:
        from .card_cmds import add_card_commands

        add_card_commands(group, flow_cls, script)

    return load


def build_cli(flow_cls: type) -> click.Group:
    name = flow_cls.__name__
    script = _script(flow_cls)

    @click.group(
        cls=_LazyGroup, help=f"Run and inspect the flow {name}.\n\n\b\nExample: {script} run"
    )
    @click.option(
        "--db",
        "db",
        default=None,
        metavar="PATH",
        help="Ledger file (default: $LEDGERFLOW_DB, else the nearest ledgerflow.db).",
    )
    @click.option("--quiet/--not-quiet", default=False, help="Print only errors and the run id.")
    @click.option(
        "--verbose",
        is_flag=True,
        help="Print every task's start and end lines, however wide the run.",
    )
    @click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
    @click.option(
        "--environment",
        hidden=True,
        default=None,
        help="Accepted for Metaflow compatibility; anything but 'local' is warned "
        "about and not applied.",
    )
    @click.option(
        "--with",
        "top_with",
        multiple=True,
        hidden=True,
        help="Add a decorator to every step (as `run --with`).",
    )
    @_metaflow_noops
    @_project_options(flow_cls)
    @_config_options(flow_cls)
    @click.version_option(__version__, prog_name="ledgerflow")
    @click.pass_context
    def cli(ctx: click.Context, /, db: str | None, quiet: bool, debug: bool, verbose: bool,
            environment: str | None, top_with: tuple[str, ...], **rest: Any) -> None:  # fmt: skip
        _set_project_env(rest.get("branch"), rest.get("production"))
        _settle_configs(flow_cls, rest.get("config_file"), rest.get("config_value"), debug)
        ctx.obj = {
            "db": db,
            "quiet": quiet,
            "verbose": verbose,
            "environment": environment,
            "with": top_with,
        }

    _add_graph_commands(cli, flow_cls, script)
    _add_run_commands(cli, flow_cls, script)
    assert isinstance(cli, _LazyGroup)
    cli.loaders = [_inspect_commands(flow_cls, script), _card_commands(flow_cls, script)]
    return cli


def _add_graph_commands(cli: click.Group, flow_cls: type, script: str) -> None:
    """help, version, and what reads the flow's graph: output-dot, output-raw, check, show."""
    name = flow_cls.__name__

    @cli.command(help=f"Show all available commands.\n\n\b\nExample: {script} help")
    @click.pass_context
    def help(ctx: click.Context) -> None:
        click.echo(ctx.parent.get_help() if ctx.parent else "")

    @cli.command(help=f"Print the ledgerflow version.\n\n\b\nExample: {script} version")
    def version() -> None:
        click.echo(__version__)

    @cli.command(name="output-dot", help=f"Print the graph of {name} in GraphViz dot.\n\n"
                                         f"\b\nExample: {script} output-dot | dot -Tpng -o "
                                         "graph.png")  # fmt: skip
    @_errors_as_lines
    def output_dot() -> None:
        from .flow_inspect import _header

        graph = validated_graph(flow_cls)
        _header("Visualizing the flow as a GraphViz graph")
        click.echo(graph.output_dot())

    @cli.command(name="output-raw", help=f"Print the internal graph of {name}.\n\n"
                                         f"\b\nExample: {script} output-raw --json")  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="As JSON (steps and structure).")
    @_errors_as_lines
    def output_raw(as_json: bool) -> None:
        from .flow_inspect import _header

        graph = validated_graph(flow_cls)
        if as_json:
            import json

            steps, structure = graph.output_steps()
            _header("Internal representation of the flow in JSON format:")
            click.echo(json.dumps({"graph": steps, "graph_structure": structure}, indent=4))
        else:
            _header("Internal representation of the flow:")
            click.echo(str(graph))

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


def _run_options() -> list[Callable[[Any], Any]]:
    """The options `run` and `resume` share (besides the flow's parameters)."""
    return [
        click.option("--with", "with_decorators", multiple=True, metavar="DECORATOR",
                     help="Add a decorator to every step, e.g. --with retry or "
                          "--with retry:times=2 (repeatable)."),
        click.option("--tag", "tags", multiple=True, metavar="TAG", callback=_checked_tags,
                     help="Annotate this run with the given tag (repeatable)."),
        click.option("--max-workers", type=click.IntRange(min=1), default=RunOptions.max_workers,
                     show_default=True,
                     help="Maximum number of tasks running at once."),
        click.option("--executor", type=click.Choice(EXECUTOR_NAMES), default=RunOptions.executor,
                     show_default=True,
                     help="Where tasks run: process (each task in a fresh process of its own), "
                          "spawn (a fresh interpreter per task), thread (threads of one "
                          "process: tasks share globals and os.environ), sequential, dask "
                          "(a Dask cluster; pip install 'ledgerflow[dask]')."),
        click.option("--dask-scheduler", default=None, metavar="ADDRESS",
                     envvar="LEDGERFLOW_DASK_SCHEDULER",
                     help="With --executor dask: the scheduler to use, e.g. "
                          "tcp://host:8786 (default: $LEDGERFLOW_DASK_SCHEDULER, else a "
                          "LocalCluster of this machine's cores)."),
        click.option("--max-num-splits", type=click.IntRange(min=1),
                     default=RunOptions.max_num_splits,
                     show_default=True, help="Largest foreach allowed (a guard against mistakes)."),
        click.option("--reuse", is_flag=True, default=False,
                     help="Do not run a task whose step code and inputs match a successful "
                          "task already in the ledger: clone its result (docs/reuse.md)."),
        click.option("--run-id-file", type=click.Path(dir_okay=False), default=None,
                     help="Write the run id to this file once the run starts."),
        click.option("--runner-attribute-file", type=click.Path(dir_okay=False), default=None,
                     hidden=True, help="Write {run_id, flow_name, metadata} as JSON to this "
                     "file once the run starts (what Runner reads)."),
        click.option("--max-log-size", type=click.IntRange(min=0), default=10, hidden=True,
                     help="Accepted for Metaflow compatibility; ledgerflow stores logs whole."),
    ]  # fmt: skip


def _add_run_commands(cli: click.Group, flow_cls: type, script: str) -> None:
    """`run` and `resume`: the shared options, then the flow's parameters as options."""
    name = flow_cls.__name__
    run_options = _run_options()
    every = flow_parameters(flow_cls)  # Configs too: they are stored as parameters are
    params = [(attr, p) for attr, p in every if not p.IS_CONFIG_PARAMETER]

    def run_command(**kwargs: Any) -> None:
        _run(flow_cls, kwargs, every)

    command: Callable[..., Any] = _errors_as_lines(run_command)
    for option in reversed(run_options):
        command = option(command)
    command = click.option(
        "--namespace", "user_namespace", default=None, metavar="NAMESPACE",
        help="The namespace the Client API uses inside the steps (default: user:<you>; "
        "--namespace= for every run). The run's own tags do not change.",
    )(command)  # fmt: skip
    for _, param in reversed(params):
        command = param.option()(command)
    cli.command(
        name="run",
        help=f"Run {name}, recording everything in the ledger.\n\n"
        f"\b\nExample: {script} run --tag nightly --max-workers 4",
    )(command)

    def resume_command(step_to_rerun: str | None, origin_run_id: str | None, **kwargs: Any) -> None:
        _resume(flow_cls, step_to_rerun, origin_run_id, kwargs, every)

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


def _apply_with(flow_cls: type, options: dict[str, Any]) -> None:
    from ..decorators import apply_with
    from ..exceptions import LedgerflowError

    top = click.get_current_context().find_root().obj.get("with") or ()
    try:
        apply_with(flow_cls, [*top, *(options.get("with_decorators") or ())])
    except LedgerflowError as e:
        raise click.BadParameter(str(e), param_hint="'--with'") from None


def _run(flow_cls: type, options: dict[str, Any], params: list[tuple[str, Any]]) -> None:
    _apply_with(flow_cls, options)
    ctx = click.get_current_context()
    values: dict[str, Any] = {}
    with parameter_context(flow_cls):
        for attr, param in params:
            if param.IS_CONFIG_PARAMETER:
                values[attr] = _config_value(flow_cls, param)
                continue
            key = param.name.replace("-", "_")
            given = options.get(key)
            if given is None and _given_on_command_line(ctx, key):
                values[attr] = None  # an explicit JSON null, not "use the default"
                continue
            values[attr] = param.resolve(given, flow_cls.__name__)
            if param.required and values[attr] is None:
                raise click.MissingParameter(
                    param_hint=f"'--{param.name}'", ctx=ctx, param_type="option"
                )
    validated_graph(flow_cls)
    if options.get("user_namespace") is not None:
        from ..client import namespace

        namespace(options["user_namespace"] or None)  # the steps' Client API, as Metaflow
    _execute(flow_cls, values, options)


def _config_value(flow_cls: type, config: Any) -> Any:
    """A config's settled value as the run stores it (a plain dict, as Metaflow does)."""
    from ..configs import ConfigValue

    value = (getattr(flow_cls, "_lf_config_values", None) or {}).get(config.name)
    return value.to_dict() if isinstance(value, ConfigValue) else value


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
    _reuse_origin_configs(flow_cls, params, values, run_id)
    _execute(flow_cls, values, options, origin=origin, rerun_steps=rerun)


def _reuse_origin_configs(flow_cls: type, params: list[tuple[str, Any]], values: dict[str, Any],
                          run_id: str) -> None:  # fmt: skip
    """Resume runs with the origin run's configs, as Metaflow's does: --config and
    --config-value are not applied (said so), and a config the origin did not record
    (added since) keeps the value settled now."""
    configs = [(attr, p) for attr, p in params if p.IS_CONFIG_PARAMETER]
    if not configs:
        return
    from ..configs import apply_configs

    root = click.get_current_context().find_root()
    if root.params.get("config_file") or root.params.get("config_value"):
        click.echo(f"Warning: resume uses the configs of run {run_id}; --config and "
                   "--config-value are not applied.", err=True)  # fmt: skip
    settled = dict(getattr(flow_cls, "_lf_config_values", None) or {})
    for attr, config in configs:
        if attr in values:
            settled[config.name] = values[attr]
        else:
            values[attr] = _config_value(flow_cls, config)
    apply_configs(flow_cls, settled)


def _execute(
    flow_cls: type, values: dict[str, Any], options: dict[str, Any], **resume: Any
) -> None:
    root = click.get_current_context().find_root().obj
    run_options = RunOptions(
        db=root["db"],
        quiet=root["quiet"],
        verbose=root.get("verbose", False),
        executor=options["executor"],
        max_workers=options["max_workers"],
        max_num_splits=options["max_num_splits"],
        tags=list(options["tags"]),
        run_id_file=options.get("run_id_file"),
        runner_attribute_file=options.get("runner_attribute_file"),
        environment=root.get("environment"),
        dask_scheduler=options.get("dask_scheduler"),
        reuse=bool(options.get("reuse")),
    )
    execute_run(flow_cls, values, run_options, **resume)
