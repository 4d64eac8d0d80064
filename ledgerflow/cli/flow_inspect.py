"""`python flow.py tag|logs|dump`: Metaflow's commands for looking at (and tagging) the runs
of one flow, over the Client API.

They see every run of the flow, whoever ran it (`namespace(None)`): the run id says which.
Headers go to stderr and data to stdout, as in Metaflow, so
`python flow.py logs 12/start > out.txt` captures just the log text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..exceptions import MetaflowNotFound
from .common import BadParameter, UsageError, all_namespaces, errors_as_lines, printable
from .ledger_args import ledger_path
from .reads import screen_log

if TYPE_CHECKING:
    from ..client import Run, Task
    from ..ledger import Ledger


def add_inspect_commands(cli: click.Group, flow_cls: type, script: str) -> None:
    """Add `tag` (add, remove, replace, list), `logs` and `dump` to a flow's command line."""
    flow = flow_cls.__name__
    tag = _add_tag_commands(cli, flow, script)
    _add_tag_list(tag, flow, script)
    _add_logs_command(cli, flow, script)
    _add_dump_command(cli, flow, script)


def _add_tag_commands(cli: click.Group, flow: str, script: str) -> click.Group:
    """The `tag` group, with `add`, `remove` and `replace`."""

    @cli.group(help=f"Add, remove, replace or list the tags of a run of {flow}.\n\n"
                    f"\b\nExample: {script} tag list --all")  # fmt: skip
    def tag() -> None:
        pass

    run_id_option = click.option("--run-id", default=None, metavar="RUN_ID",
                                 help="The run to tag (required).")  # fmt: skip

    @tag.command("add", help="Add user tags to a run.\n\n"
                             f"\b\nExample: {script} tag add --run-id 1795700104055947269005 "
                             "baseline nightly")  # fmt: skip
    @run_id_option
    @click.argument("tags", nargs=-1, required=True)
    @errors_as_lines
    def tag_add(run_id: str | None, tags: tuple[str, ...]) -> None:
        with all_namespaces():
            run = _run_to_tag(flow, run_id)
            run.add_tags(tags)
        _echo_new_tags(run)

    @tag.command("remove", help="Remove user tags from a run (system tags cannot be "
                                "removed).\n\n"
                                f"\b\nExample: {script} tag remove --run-id 1795700104055947269005 "
                                "nightly")  # fmt: skip
    @run_id_option
    @click.argument("tags", nargs=-1, required=True)
    @errors_as_lines
    def tag_remove(run_id: str | None, tags: tuple[str, ...]) -> None:
        with all_namespaces():
            run = _run_to_tag(flow, run_id)
            run.remove_tags(tags)
        _echo_new_tags(run)

    @tag.command("replace", help="Replace user tags of a run atomically: removals are "
                                 "applied first, then additions, in one transaction.\n\n"
                                 f"\b\nExample: {script} tag replace --run-id "
                                 "1795700104055947269005 --remove candidate --add "
                                 "production")  # fmt: skip
    @run_id_option
    @click.option(
        "--remove",
        "to_remove",
        multiple=True,
        metavar="TAG",
        help="A tag to remove (repeatable; at least one).",
    )
    @click.option(
        "--add",
        "to_add",
        multiple=True,
        metavar="TAG",
        help="A tag to add (repeatable; at least one).",
    )
    @errors_as_lines
    def tag_replace(
        run_id: str | None, to_remove: tuple[str, ...], to_add: tuple[str, ...]
    ) -> None:
        if not to_remove or not to_add:
            raise UsageError(
                "give at least one --remove and one --add (to only add or only remove, use "
                "`tag add` or `tag remove`)"
            )
        with all_namespaces():
            run = _run_to_tag(flow, run_id)
            run.replace_tags(to_remove, to_add)
        _echo_new_tags(run)

    return tag


def _add_tag_list(tag: click.Group, flow: str, script: str) -> None:
    """`tag list`: the tags of a run, of every run, or of the runs of one user."""

    @tag.command("list", help=f"List the tags of a run of {flow} (by default its latest "
                              "run), or of every run with --all. User tags are in bold; "
                              "with --quiet, one line per run: 'PATHSPEC ; SYSTEM,TAGS ; "
                              "USER,TAGS'.\n\n"
                              f"\b\nExample: {script} tag list 1795700104055947269005 "
                              "--hide-system-tags")  # fmt: skip
    @click.argument("arg_run_id", metavar="[RUN_ID]", required=False)
    @click.option("--run-id", default=None, metavar="RUN_ID", help="The run to list.")
    @click.option("--all", "list_all", is_flag=True, help="Every run of the flow, newest first.")
    @click.option(
        "--my-runs",
        is_flag=True,
        help="Every run of the flow in your namespace (user:<you>), newest first.",
    )
    @click.option("--hide-system-tags", is_flag=True, help="Only user tags.")
    @click.option("--group-by-tag", is_flag=True, help="For each tag, the runs that have it.")
    @click.option("--group-by-run", is_flag=True, help="For each run, its tags (the default).")
    @click.option("--flat", is_flag=True, help="Every tag once, one per line, no grouping.")
    @errors_as_lines
    def tag_list(arg_run_id: str | None, run_id: str | None, list_all: bool, my_runs: bool,
                 hide_system_tags: bool, group_by_tag: bool,
                 group_by_run: bool, flat: bool) -> None:  # fmt: skip
        if arg_run_id and run_id:
            raise UsageError("give the run either as RUN_ID or with --run-id, not both")
        run_id = arg_run_id or run_id
        if (list_all or my_runs) and run_id:
            raise UsageError("--all and --my-runs list several runs; leave out the run id")
        if list_all and my_runs:
            raise UsageError("--all cannot be used together with --my-runs")
        if group_by_tag and group_by_run:
            raise UsageError("--group-by-tag cannot be used with --group-by-run")
        if flat and (group_by_tag or group_by_run):
            raise UsageError("--flat cannot be used with any --group-by-* option")
        with all_namespaces():
            if list_all or my_runs:
                runs = list(_flow(flow))
                if my_runs:
                    from ..current import get_username

                    mine = f"user:{get_username()}"
                    runs = [r for r in runs if mine in r.system_tags]
            elif run_id:
                runs = [_run(flow, run_id)]
            else:
                latest = _flow(flow).latest_run
                runs = [latest] if latest is not None else []
        if not runs:
            raise MetaflowNotFound(f"{flow} has no runs in ledger {_ledger_path()}")
        if flat:
            from ..tags import flat_tags  # (compat: `tag list --flat`)

            click.echo("\n".join(flat_tags(runs, hide_system_tags)))
        elif group_by_tag:
            _echo_runs_by_tag(runs, hide_system_tags)
        else:
            _echo_tags(runs, hide_system_tags, per_run=list_all or my_runs or group_by_run)


def _add_logs_command(cli: click.Group, flow: str, script: str) -> None:
    """`logs`: what a task (or every task of a step) wrote."""

    @cli.command(help="Print the stdout and stderr a task (or every task of a step) wrote, "
                      "as stored in the ledger. Headers go to stderr, the text to stdout.\n\n"
                      f"\b\nExample: {script} logs 1795700104055947269005/start --stdout > "
                      "out.txt")  # fmt: skip
    @click.argument("input_path", metavar="RUN_ID/STEP[/TASK_ID]")
    @click.option("--stdout", "only_stdout", is_flag=True, help="Only stdout.")
    @click.option("--stderr", "only_stderr", is_flag=True, help="Only stderr.")
    @click.option("--both", is_flag=True, help="Both stdout and stderr (the default).")
    @click.option(
        "--attempt",
        type=click.IntRange(min=0),
        default=None,
        help="This attempt of each task (default: the latest); tasks without it are skipped.",
    )
    @errors_as_lines
    def logs(input_path: str, only_stdout: bool, only_stderr: bool, both: bool,
             attempt: int | None) -> None:  # fmt: skip
        streams = [s for s, wanted in (("stdout", only_stdout), ("stderr", only_stderr)) if wanted]
        if both or not streams:
            streams = ["stdout", "stderr"]
        with all_namespaces():
            tasks = _tasks(flow, input_path, attempt)
        for task in tasks:
            _header(f"Dumping logs of run_id={_ids(task)}")
            for stream in streams:
                _header(stream, bold=True)
                text = task.stdout if stream == "stdout" else task.stderr
                if text:
                    click.echo(screen_log(text), nl=not text.endswith("\n"))


def _add_dump_command(cli: click.Group, flow: str, script: str) -> None:
    """`dump`: the artifacts of a task (or every task of a step) with their values."""

    @cli.command(help="Print the artifacts of a task (or of every task of a step) with "
                      "their values: 'name [size: N type: <class 'T'>] = value'. Values "
                      "larger than --max-value-size are not loaded; 0 shows only names, "
                      "sizes and types.\n\n"
                      f"\b\nExample: {script} dump 1795700104055947269005/train --include "
                      "accuracy,model")  # fmt: skip
    @click.argument("input_path", metavar="RUN_ID/STEP[/TASK_ID]")
    @click.option(
        "--include", default="", metavar="A,B", help="Only these artifacts (comma-separated names)."
    )
    @click.option(
        "--max-value-size",
        type=click.IntRange(min=0),
        default=1000,
        show_default=True,
        help="Load only values of at most this many bytes.",
    )
    @click.option("--private", is_flag=True, help="Also internal artifacts (names with _).")
    @click.option(
        "--trust", is_flag=True, help="Allow unpickling values written on another machine."
    )
    @click.option(
        "--file",
        "file",
        default=None,
        type=click.Path(dir_okay=False),
        help="Write the artifacts, every value loaded whatever its size, as a pickled "
        "dict {'RUN_ID/STEP/TASK_ID': {name: value}} to this file (as Metaflow).",
    )
    @errors_as_lines
    def dump(input_path: str, include: str, max_value_size: int, private: bool,
             trust: bool, file: str | None) -> None:  # fmt: skip
        from ..ledger import Ledger

        ledger = Ledger.open(_ledger_path(f"{flow}/{input_path}"), reader=True)
        if trust:
            from ..trust_store import trust as trust_ledger

            trust_ledger(ledger.path)
        names = {n for n in include.split(",") if n}
        output: dict[str, dict[str, Any]] = {}
        with all_namespaces():
            for task in _tasks(flow, input_path, None):
                _header(f"Dumping output of run_id={_ids(task)}")
                if file is not None:
                    output["/".join(task.path_components[1:4])] = _dump_dict(
                        ledger, task, names, private
                    )
                    continue
                for line in _dump_lines(ledger, task, names, max_value_size, private):
                    click.echo(line)
        if file is not None:
            _write_pickle(file, output)
            _header(f"Artifacts written to {file}")


# -- finding runs and tasks ----------------------------------------------------------------


def _ledger_path(wanted: str = "") -> Path:
    """The ledger named by --db (or the default location); it must exist."""
    return ledger_path(click.get_current_context(), wanted)


def _flow(flow: str) -> Any:
    from ..client import Flow

    return Flow(flow, ledger=_ledger_path(f"runs of {flow}"))


def _run(flow: str, run_id: str) -> Run:
    from ..client import Run

    if not run_id or "/" in run_id:
        raise BadParameter(f"{run_id!r} is not a run id of {flow}", param_hint="--run-id")
    return Run(f"{flow}/{run_id}", ledger=_ledger_path(f"{flow}/{run_id}"))


def _run_to_tag(flow: str, run_id: str | None) -> Run:
    if run_id is None:
        latest = _flow(flow).latest_run
        hint = f"; the latest run of {flow} is {latest.id}" if latest is not None else ""
        raise UsageError(f"give the run to tag with --run-id RUN_ID{hint}")
    return _run(flow, run_id)


def _tasks(flow: str, input_path: str, attempt: int | None) -> list[Task]:
    """The task RUN_ID/STEP/TASK_ID, or every task of RUN_ID/STEP (by task id), at the
    given attempt (default: each task's latest)."""
    from ..ledger import Ledger
    from .reads import log_tasks

    parts = input_path.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadParameter(
            f"{input_path!r} is not RUN_ID/STEP or RUN_ID/STEP/TASK_ID",
            param_hint="RUN_ID/STEP[/TASK_ID]",
        )
    ledger = Ledger.open(_ledger_path(f"{flow}/{input_path}"), reader=True)
    return log_tasks(ledger, [flow, *parts], attempt)


# -- printing ------------------------------------------------------------------------------


def _quiet() -> bool:
    return bool(click.get_current_context().find_root().obj.get("quiet"))


def _header(text: str, bold: bool = False) -> None:
    """A header line on stderr (none with --quiet)."""
    if not _quiet():
        click.secho(printable(text), err=True, bold=bold, fg=None if bold else "magenta")


def _ids(task: Task) -> str:
    run_id, step, task_id = task.path_components[1:4]
    return f"{run_id} step={step} task_id={task_id}"


def _echo_new_tags(run: Run) -> None:
    _header("Operation successful. New tags:")
    _echo_tags([run], hide_system=False, per_run=False)


def _echo_tags(runs: Iterable[Run], hide_system: bool, per_run: bool) -> None:
    """Metaflow's tag listing: a header, then the tags in columns (user tags in bold)."""
    runs = list(runs)
    if _quiet():
        for run in runs:
            system = "" if hide_system else ",".join(sorted(run.system_tags))
            click.echo(printable(f"{run.pathspec} ; {system} ; {','.join(sorted(run.user_tags))}"))
        return
    click.echo("\nSystem tags and " + click.style("tags", bold=True) + "; only "
               + click.style("tags", bold=True) + " can be modified")  # fmt: skip
    click.echo("-" * 56 + "\n")
    for run in runs:
        if per_run:
            click.echo(f"For run {printable(run.pathspec)}")
        tags = sorted(run.user_tags if hide_system else run.tags)
        for line in _columns(tags, set(run.user_tags)):
            click.echo(line)
        click.echo("")


def _columns(tags: list[str], bold: set[str], width: int = 124) -> list[str]:
    """Tags in as many columns as fit in `width`, filled top to bottom (as Metaflow)."""
    if not tags:
        return ["(no tags)"]
    size = max(len(t) for t in tags)
    n_cols = max(1, width // (size + 4))
    per_col = (len(tags) + n_cols - 1) // n_cols
    lines = []
    tags, bold = [printable(t) for t in tags], {printable(t) for t in bold}  # received tags
    for i in range(per_col):
        row = [tags[j] for j in range(i, len(tags), per_col)]
        cells = [(click.style(t, bold=True) if t in bold else t) + " " * (size - len(t))
                 for t in row]  # fmt: skip
        lines.append("    ".join(cells).rstrip())
    return lines


def _dump_lines(ledger: Ledger, task: Task, names: set[str], max_value_size: int,
                private: bool) -> list[str]:  # fmt: skip
    """Metaflow's dump lines for one task, sorted by name; only values of 1 to
    max_value_size bytes are loaded."""
    from .reads import artifact_records

    flow, run_id, step, task_id = task.path_components
    arts = artifact_records(ledger, flow, run_id, step, task_id, task.current_attempt,
                            private=private)  # fmt: skip
    if private:  # the internal artifacts built from the task's columns (internals.py)
        from ..internals import INTERNAL_ARTIFACTS

        arts += [{"name": n, "size": task[n].size, "type": task[n].type}
                 for n in INTERNAL_ARTIFACTS]  # fmt: skip
        arts.sort(key=lambda a: a["name"])
    lines = []
    for art in arts:
        if names and art["name"] not in names:
            continue
        if 0 < art["size"] <= max_value_size:
            value: Any = task[art["name"]].data
        else:
            value = "< artifact too large >"
        lines.append(f"{art['name']} [size: {art['size']} type: {_class(art['type'])}] = {value}")
    return lines


def _dump_dict(ledger: Ledger, task: Task, names: set[str], private: bool) -> dict[str, Any]:
    """{name: value} of a task's artifacts, every value loaded (Metaflow's dump --file)."""
    from .reads import artifact_records

    flow, run_id, step, task_id = task.path_components
    wanted = [a["name"] for a in artifact_records(ledger, flow, run_id, step, task_id,
                                                  task.current_attempt, private=private)]  # fmt: skip
    if private:
        from ..internals import INTERNAL_ARTIFACTS

        wanted += list(INTERNAL_ARTIFACTS)
    return {name: task[name].data for name in sorted(wanted) if not names or name in names}


def _write_pickle(path: str, output: dict[str, Any]) -> None:
    """Write whole or not at all: a temporary file beside the target, then a rename."""
    import os
    import pickle
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".dump-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(output, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _echo_runs_by_tag(runs: list[Run], hide_system: bool) -> None:
    """Metaflow's `tag list --group-by-tag`: for each tag, the runs having it."""
    by_tag: dict[tuple[bool, str], list[str]] = {}
    for run in runs:
        for t in run.user_tags:
            by_tag.setdefault((False, t), []).append(run.pathspec)
        if not hide_system:
            for t in run.system_tags:
                by_tag.setdefault((True, t), []).append(run.pathspec)
    for (system, t), pathspecs in sorted(by_tag.items(), key=lambda kv: kv[0][1]):
        if _quiet():
            click.echo(
                printable(f"{'system' if system else 'user'}:{t} ; {','.join(sorted(pathspecs))}")
            )
            continue
        click.echo("For tag " + (printable(t) if system else click.style(printable(t), bold=True)))
        for line in _columns(sorted(pathspecs), set()):
            click.echo(line)
        click.echo("")


def _class(type_name: str) -> str:
    """'builtins.float' -> "<class 'float'>", as str(type(value)) prints it."""
    module, _, qualname = type_name.partition(".")
    return f"<class '{qualname if module == 'builtins' else type_name}'>"
