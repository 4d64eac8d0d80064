"""`python flow.py run ...` without click, for the plain command lines most runs use.

click costs every run ~20 ms of imports and set-up before its first task starts. This parser
takes only the plainest command line: the global options --db, --quiet, --debug and
Metaflow's no-ops (--no-pylint, --pylint, --metadata, --datastore, --environment), then
`run` with its own options and the flow's parameters, each given once as
`--name value` or `--name=value`, every value valid beyond doubt. For anything else (help,
--with, a bool or file parameter, a value click would refuse or read differently) it answers
None and click parses the command line, reporting any mistake exactly as it always does.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, NoReturn

from .errors import call_reporting_errors
from .run_flow import (
    EXECUTOR_NAMES,
    RunOptions,
    execute_run,
    refuse_unsupported,
    validated_graph,
)

_GLOBAL_FLAGS = {"--quiet", "--debug", "--no-pylint", "--pylint"}
# Metaflow's top-level options that take a value; only --environment is looked at (warned).
_GLOBAL_VALUES = {"--db", "--metadata", "--datastore", "--datastore-root", "--environment",
                  "--event-logger", "--monitor"}  # fmt: skip
_RUN_OPTIONS = {"--tag", "--max-workers", "--executor", "--max-num-splits", "--run-id-file",
                "--runner-attribute-file", "--max-log-size", "--dask-scheduler"}  # fmt: skip
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def main(flow_cls: type) -> NoReturn:
    """The flow's command line: plain `run`s here, everything else through click."""
    refuse_unsupported(flow_cls)
    parsed = parse_plain_run(flow_cls, sys.argv[1:])
    if parsed is None:
        from .flow_cli import main as click_main

        click_main(flow_cls)
    values, options, debug = parsed

    def run() -> None:
        validated_graph(flow_cls)
        execute_run(flow_cls, values, options)

    call_reporting_errors(run, debug)
    sys.exit(0)


def parse_plain_run(flow_cls: type,
                    args: list[str]) -> tuple[dict[str, Any], RunOptions, bool] | None:  # fmt: skip
    """(parameter values, options, debug) for a plain `run` command line, else None."""
    try:
        at = args.index("run")
    except ValueError:
        return None
    globals_ = _pairs(args[:at], takes_value=_GLOBAL_VALUES, flags=_GLOBAL_FLAGS)
    if globals_ is None:
        return None
    from ..parameters import flow_parameters

    params = {f"--{p.name}": (attr, p) for attr, p in flow_parameters(flow_cls)}
    if set(params) & (_RUN_OPTIONS | _GLOBAL_FLAGS | _GLOBAL_VALUES):
        return None
    given = _pairs(args[at + 1 :], takes_value=_RUN_OPTIONS | set(params), flags=set(),
                   repeatable={"--tag"})  # fmt: skip
    if given is None:
        return None
    options = _run_options(globals_, given)
    if options is None:
        return None
    values: dict[str, Any] = {}
    for option, (attr, param) in params.items():
        text = given.get(option)
        if text is None and param.from_environment() is not None:
            return None  # $METAFLOW_RUN_<NAME>: click reads it (and reports a bad value)
        if text is None:
            if param.required and param.default is None:
                return None  # click reports it missing
            if callable(param.default) or (param.IS_INCLUDE_FILE and param.default is not None):
                return None  # deploy-time defaults and files: resolved where errors are reported
            try:
                values[attr] = param.resolve(None)
            except Exception:  # noqa: BLE001 - e.g. a JSON default that does not parse
                return None  # click's path reports it
            continue
        converted = _convert(param, text[-1])
        if converted is None:
            return None
        values[attr] = param.split(converted[0])  # separator=
    return values, options, "--debug" in globals_


def _pairs(
    tokens: list[str], takes_value: set[str], flags: set[str],
    repeatable: frozenset[str] | set[str] = frozenset(),
) -> dict[str, list[str]] | None:  # fmt: skip
    """Options and their values; None for anything unknown, repeated or unusual."""
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, value = token.partition("=")
        if name in flags and not eq:
            found.setdefault(name, [])
            i += 1
            continue
        if name not in takes_value:
            return None
        if not eq:
            if i + 1 >= len(tokens):
                return None
            value = tokens[i + 1]
            i += 1
        i += 1
        if value.startswith("-") and not _FLOAT.fullmatch(value):
            return None  # e.g. `--tag --quiet`: leave the reading to click
        if name in found and name not in repeatable:
            return None
        found.setdefault(name, []).append(value)
    return found


def _run_options(globals_: dict[str, list[str]], given: dict[str, list[str]]) -> RunOptions | None:
    from ..exceptions import MetaflowTaggingError
    from ..tags import MAX_USER_TAG_SET_SIZE, validate_tag

    options = RunOptions(db=(globals_.get("--db") or [None])[-1], quiet="--quiet" in globals_)
    if "--environment" in globals_:
        options.environment = globals_["--environment"][-1]
    try:
        options.tags = [validate_tag(t) for t in given.get("--tag", [])]
    except MetaflowTaggingError:
        return None
    if len(set(options.tags)) > MAX_USER_TAG_SET_SIZE:
        return None
    for option, attr in (("--max-workers", "max_workers"), ("--max-num-splits", "max_num_splits")):
        if option in given:
            text = given[option][-1]
            if not _INT.fullmatch(text) or int(text) < 1:
                return None
            setattr(options, attr, int(text))
    if "--executor" in given:
        options.executor = given["--executor"][-1]
        if options.executor not in EXECUTOR_NAMES:
            return None
    if "--dask-scheduler" in given:
        options.dask_scheduler = given["--dask-scheduler"][-1] or None
    for option, attr in (("--run-id-file", "run_id_file"),
                         ("--runner-attribute-file", "runner_attribute_file")):  # fmt: skip
        if option in given:
            path = given[option][-1]
            if not path or os.path.isdir(path):
                return None
            setattr(options, attr, path)
    if "--max-log-size" in given:  # accepted; logs are stored whole
        text = given["--max-log-size"][-1]
        if not _INT.fullmatch(text) or int(text) < 0:
            return None
    return options


def _convert(param: Any, text: str) -> tuple[Any] | None:
    """(value,) for a parameter's command-line text when the conversion is beyond doubt."""
    from ..parameters import JSONType

    if param.IS_INCLUDE_FILE:
        return None
    if param.type is str:
        return (text,)
    if param.type is int and _INT.fullmatch(text):
        return (int(text),)
    if param.type is float and _FLOAT.fullmatch(text):
        return (float(text),)
    if param.type is JSONType:
        import json

        try:
            return (json.loads(text),)
        except ValueError:
            return None
    return None  # bool, custom types: click's conversion
