"""`python flow.py run` without click: the plain parser must read a command line exactly as
click does, or leave it to click. (What it saves: scripts/bench.py, docs/performance.md.)"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ledgerflow.cli import flow_cli
from ledgerflow.cli.plain_run import parse_plain_run

from .helpers import FLOWS, load_artifact, run_flow

FLOW = FLOWS / "plain" / "params_flow.py"


def _flow_class() -> type:
    spec = importlib.util.spec_from_file_location("_plain_params_flow", FLOW)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.ParamsFlow


ParamsFlow = _flow_class()


def _through_click(args: list[str]) -> tuple[dict, object] | int:
    """What click hands to execute_run for these arguments, or the exit code it stops with."""
    seen = {}

    def capture(flow_cls, values, options, **resume):
        seen["call"] = (values, options)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(flow_cli, "execute_run", capture)
        m.setattr(flow_cli, "validated_graph", lambda flow_cls: None)
        with pytest.raises(SystemExit) as done:
            flow_cli.main(ParamsFlow, args)
    if "call" in seen:
        return seen["call"]
    return done.value.code


INTS = ["0", "7", "-1", "+2", "03", " 4", "1_000", "1e3", "x"]
FLOATS = ["2.5", ".5", "-.5e-2", "1e3", "7", "nan", "inf", "1.", "1_0.5", "x"]
TEXTS = ["t1", "", "-", "hello world", "x=y", "--quiet", "tag:with:colons", "é", "a" * 600]
VALUES = {
    "--tag": TEXTS, "--max-workers": INTS, "--max-num-splits": INTS, "--count": INTS,
    "--executor": ["process", "thread", "sequential", "fork", ""], "--rate": FLOATS,
    "--run-id-file": ["id.txt", "", ".", "-"], "--label": TEXTS, "--dash-name": TEXTS,
    "--config": ['{"b": [1, 2]}', "{bad", "3", '"s"', "null"], "--verbose": ["true", "no"],
    "--notes": ["n.txt"], "--with": ["retry"], "--db": ["b.db"], "--quiet": ["x"],
}  # fmt: skip
OPTIONS = sorted(VALUES)
NOISE = ["run", "--help", "resume", "--", "-5", "extra", "--debug"]


@st.composite
def command_lines(draw) -> list[str]:
    """Mostly well-formed `run` command lines (options with values, `=` or not), some noise."""
    args = draw(st.lists(st.sampled_from(["--quiet", "--debug", "--no-pylint"]), max_size=2))
    if draw(st.booleans()):
        args += ["--db", "a.db"] if draw(st.booleans()) else ["--db=a.db"]
    args.append("run")
    for _ in range(draw(st.integers(0, 5))):
        option = draw(st.sampled_from(OPTIONS))
        value = draw(st.sampled_from(VALUES[option]))
        args += [f"{option}={value}"] if draw(st.booleans()) else [option, value]
    if draw(st.integers(0, 4)) == 0:
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(NOISE)))
    return args


@settings(max_examples=400, deadline=None)
@given(command_lines())
def test_plain_parser_agrees_with_click_or_defers(args):
    plain = parse_plain_run(ParamsFlow, args)
    event("plain" if plain else "left to click")
    if plain is None:
        return  # click reads it, as before
    values, options, debug = plain
    clicked = _through_click(args)
    assert not isinstance(clicked, int), f"click refuses {args} (exit {clicked})"
    assert (values, options) == clicked, args
    assert debug == ("--debug" in args[: args.index("run")])


@pytest.mark.parametrize("args", [
    ["run"],
    ["--db", "x.db", "--quiet", "run", "--tag", "a", "--tag", "b", "--max-workers", "2"],
    ["run", "--count", "12", "--rate=2.5", "--label", "hello world", "--config", "[1, 2]"],
    ["--no-pylint", "run", "--executor", "sequential", "--max-num-splits", "5",
     "--run-id-file", "id.txt", "--dash-name", "z"],
])  # fmt: skip
def test_common_command_lines_take_the_plain_path_with_clicks_result(args):
    plain = parse_plain_run(ParamsFlow, args)
    assert plain is not None, args
    assert plain[:2] == _through_click(args)


@pytest.mark.parametrize("args", [
    ["run", "--help"], ["--help"], ["run", "--with", "retry"], ["run", "--verbose", "true"],
    ["run", "--notes", "n.txt"], ["run", "--max-workers", "0"], ["run", "--count", "abc"],
    ["run", "--tag", ""], ["run", "--executor", "fork"], ["run", "--count", "1", "--count", "2"],
    ["resume"], ["show"], ["run", "extra"],
])  # fmt: skip
def test_anything_unusual_is_left_to_click(args):
    assert parse_plain_run(ParamsFlow, args) is None


def test_a_plain_run_loads_neither_click_nor_peewee(db_path):
    run_id = run_flow(FLOW, "--count", "3", "--config", '{"k": "v"}', db=db_path).stdout.strip()
    assert load_artifact(db_path, run_id, "start", "loaded") == []
    seen = json.loads(load_artifact(db_path, run_id, "start", "seen"))
    assert seen == [3, 0.5, "x", {"k": "v"}, False, "d"]


def test_a_bad_value_still_gets_clicks_message_and_exit_code(db_path):
    proc = run_flow(FLOW, "--count", "abc", db=db_path, check=2)
    assert "Invalid value for '--count'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_defaults_that_need_work_or_may_fail_are_left_to_click():
    from ledgerflow import FlowSpec, IncludeFile, JSONType, Parameter

    class Deploy(FlowSpec):
        when = Parameter("when", default=lambda ctx: "now")

    class File(FlowSpec):
        notes = IncludeFile("notes", default="notes.txt")

    class BadJSON(FlowSpec):
        config = Parameter("config", type=JSONType, default="{not json")

    for flow in (Deploy, File, BadJSON):
        assert parse_plain_run(flow, ["run"]) is None, flow.__name__
