"""FlowGraph / DAGNode: node types, split bookkeeping, orders, _graph_info and `show` text.

Expected values were cross-checked against Metaflow 2.19's own FlowGraph on the same
classes (types, in/out funcs, split parents/branches, matching joins, sorted_nodes and
output_steps all agree).
"""

from __future__ import annotations

import inspect
import json
import os

import pytest

from ledgerflow.graph import DAGNode, FlowGraph, deindent_docstring

from .flows.graph import cases


def line_of(func, needle: str = "def ") -> int:
    """Absolute line number of the first line of `func`'s source containing `needle`."""
    lines, start = inspect.getsourcelines(func)
    for offset, text in enumerate(lines):
        if needle in text:
            return start + offset
    raise AssertionError(f"{needle!r} not in {func.__name__}")


def types(graph: FlowGraph) -> dict[str, str | None]:
    return {node.name: node.type for node in graph}


# ------------------------------------------------------------------- node types


@pytest.mark.parametrize(
    "flow, expected",
    [
        pytest.param(
            cases.LinearFlow, {"start": "start", "middle": "linear", "end": "end"}, id="linear"
        ),
        pytest.param(
            cases.SplitFlow,
            {
                "start": "split",
                "a": "linear",
                "b": "linear",
                "b2": "linear",
                "join": "join",
                "end": "end",
            },
            id="split",
        ),
        pytest.param(
            cases.ForeachFlow,
            {"start": "start", "fan": "foreach", "work": "linear", "join": "join", "end": "end"},
            id="foreach",
        ),
        pytest.param(
            cases.SwitchFlow,
            {"start": "split-switch", "big": "linear", "small": "linear", "end": "end"},
            id="switch",
        ),
        pytest.param(
            cases.SwitchLoopFlow,
            {"start": "start", "body": "split-switch", "end": "end"},
            id="switch-loop",
        ),
        pytest.param(cases.InheritedFlow, {"start": "start", "end": "end"}, id="inherited"),
    ],
)
def test_node_types(flow, expected):
    graph = FlowGraph(flow)
    assert types(graph) == expected
    assert list(graph.nodes) == list(expected)  # iteration order: topological from start


def test_linear_node_fields():
    graph = FlowGraph(cases.LinearFlow)
    assert graph.name == "LinearFlow"
    assert graph.file == os.path.abspath(cases.__file__)
    assert (graph.start_step, graph.end_step) == ("start", "end")
    assert graph.doc == "A linear flow.\n\nIt has two lines of doc."
    assert "middle" in graph and "nope" not in graph
    assert [n.name for n in graph] == ["start", "middle", "end"]

    start = graph["start"]
    assert isinstance(start, DAGNode)
    assert start.func_lineno == line_of(cases.LinearFlow.start)
    assert start.tail_next_lineno == line_of(cases.LinearFlow.start, "self.next")
    assert start.source_file == graph.file
    assert start.doc == "Begin here."
    assert start.out_funcs == ["middle"]
    assert start.in_funcs == set()
    assert start.num_args == 1
    assert start.has_tail_next and not start.invalid_tail_next
    assert start.num_next_calls == 1
    assert start.assigned_attrs == {"x"}

    middle = graph["middle"]
    # decorators sit above @step; the one nearest @step is applied (and listed) first
    assert middle.decorator_names == ["retry", "catch"]
    # as in Metaflow, `decorators` holds the decorator objects
    assert [(d.name, d.attributes) for d in middle.decorators] == [
        ("retry", {"times": 3}),
        ("catch", {"var": "err"}),
    ]
    assert middle.func_lineno == line_of(cases.LinearFlow.middle)  # the def, not the decorator
    assert middle.assigned_attrs == {"x"}  # augmented assignment counts
    assert middle.in_funcs == {"start"}

    end = graph["end"]
    assert end.doc == "Finish.\n\nNothing else."
    assert end.out_funcs == [] and not end.has_tail_next and end.num_next_calls == 0
    assert end.tail_next_lineno == 0


def test_static_split_bookkeeping():
    graph = FlowGraph(cases.SplitFlow)
    assert graph["start"].out_funcs == ["a", "b"]
    assert graph["start"].matching_join == "join"
    assert graph["join"].in_funcs == {"a", "b2"}
    assert graph["join"].num_args == 2
    assert graph["b2"].split_parents == ["start"]
    assert graph["b2"].split_branches == ["b"]
    assert graph["join"].split_parents == ["start"]
    assert graph["join"].split_branches == []
    assert graph["end"].split_parents == []
    assert not any(n.is_inside_foreach for n in graph)
    assert graph.sorted_nodes == ["start", "a", "b", "b2", "join", "end"]


def test_foreach_bookkeeping_and_assigned_attrs():
    graph = FlowGraph(cases.ForeachFlow)
    fan = graph["fan"]
    assert fan.foreach_param == "items"
    assert fan.matching_join == "join"
    # tuple unpacking (with a starred target) and setattr with a literal name
    assert fan.assigned_attrs == {"items", "other", "rest", "via_setattr"}
    assert not fan.dynamic_setattr
    assert graph["work"].is_inside_foreach
    assert graph["work"].split_parents == ["fan"]
    assert not graph["join"].is_inside_foreach  # the join closes the foreach
    assert not fan.is_inside_foreach


def test_nested_foreach():
    graph = FlowGraph(cases.NestedForeachFlow)
    assert types(graph) == {
        "start": "foreach",
        "per_outer": "foreach",
        "per_inner": "linear",
        "inner_join": "join",
        "outer_join": "join",
        "end": "end",
    }
    assert graph["start"].matching_join == "outer_join"
    assert graph["per_outer"].matching_join == "inner_join"
    assert graph["per_inner"].split_parents == ["start", "per_outer"]
    assert graph["per_inner"].split_branches == ["per_outer", "per_inner"]
    assert graph["inner_join"].split_parents == ["start", "per_outer"]
    inside = {n.name for n in graph if n.is_inside_foreach}
    assert inside == {"per_outer", "per_inner", "inner_join"}
    _, structure = graph.output_steps()
    assert structure == [
        "start",
        [["per_outer", [["per_inner"]], "inner_join"]],
        "outer_join",
        "end",
    ]


def test_static_split_inside_foreach():
    graph = FlowGraph(cases.SplitInForeachFlow)
    assert graph["each"].type == "split"
    assert graph["each"].matching_join == "pair_join"
    assert graph["start"].matching_join == "each_join"
    assert graph["left"].split_parents == ["start", "each"]
    assert graph["pair_join"].in_funcs == {"left", "right"}
    inside = {n.name for n in graph if n.is_inside_foreach}
    assert inside == {"each", "left", "right", "pair_join"}
    _, structure = graph.output_steps()
    assert structure == [
        "start",
        [["each", [["left"], ["right"]], "pair_join"]],
        "each_join",
        "end",
    ]


def test_switch():
    graph = FlowGraph(cases.SwitchFlow)
    start = graph["start"]
    assert start.condition == "route"
    assert start.switch_cases == {"big": "big", "small": "small", 3: "small"}  # number key
    assert start.out_funcs == ["big", "small", "small"]
    assert start.matching_join is None
    assert graph["end"].in_funcs == {"big", "small"}
    steps, structure = graph.output_steps()
    assert structure == ["start", [["big"], ["small"], ["small"]], "end"]
    assert steps["start"]["type"] == "split-switch"
    assert steps["start"]["condition"] == "route"
    assert steps["start"]["switch_cases"] == {"big": "big", "small": "small", 3: "small"}


def test_switch_loop_back_to_itself():
    graph = FlowGraph(cases.SwitchLoopFlow)
    body = graph["body"]
    assert body.out_funcs == ["body", "end"]
    assert body.switch_cases == {"again": "body", "done": "end"}
    assert body.in_funcs == {"start"}  # as in Metaflow: the walk skips the self-edge
    assert graph.sorted_nodes == ["start", "body", "end"]
    steps, structure = graph.output_steps()
    # What Metaflow 2.19 stores for this flow: the loop's own edge is left out.
    assert structure == ["start", "body", [[]], "end"]
    assert steps["body"]["next"] == ["body", "end"]


def test_switch_inside_foreach():
    graph = FlowGraph(cases.SwitchInForeachFlow)
    assert graph["each"].type == "split-switch"
    assert graph["each"].is_inside_foreach
    assert graph["start"].matching_join == "join"
    assert graph["join"].in_funcs == {"path_a", "path_b"}
    _, structure = graph.output_steps()
    assert structure == ["start", [["each", [["path_a"], ["path_b"]]]], "join", "end"]


def test_iteration_order_puts_unreachable_steps_last_in_source_order():
    graph = FlowGraph(cases.BadOrphan)
    assert [n.name for n in graph] == ["start", "end", "lonely"]
    assert graph.sorted_nodes == ["start", "end"]  # Metaflow's order: reachable steps only


@pytest.mark.parametrize(
    "source, tail_ok, out_funcs",
    [
        ("self.next(self.a)", True, ["a"]),
        ("self.next(self.a, self.b)", True, ["a", "b"]),
        ("self.next(self.a, foreach='xs')", True, ["a"]),
        ("self.next({'x': self.a, 1.5: self.b}, condition='c')", True, ["a", "b"]),
        ("self.next(a)", False, []),
        ("self.next()", False, []),
        ("self.next(self.a, foreach=xs)", False, ["a"]),
        ("self.next(self.a, num_parallel=2)", False, ["a"]),
        ("self.next({k: self.a}, condition='c')", False, []),
        ("self.next({'x': self.a}, condition=c)", False, []),
        ("self.next(self.a, bogus=1)", False, ["a"]),
    ],
)
def test_tail_parsing(source, tail_ok, out_funcs):
    import ast

    func_ast = ast.parse(f"def s(self):\n    x = 1\n    {source}\n").body[0]
    node = DAGNode(func_ast, [], None, "f.py", 10)
    assert node.func_lineno == 10
    assert node.tail_next_lineno == 12
    assert node.has_tail_next
    assert node.invalid_tail_next is not tail_ok
    assert (node.invalid_reason is None) is tail_ok
    assert node.out_funcs == out_funcs
    assert node.num_next_calls == 1


def test_deindent_docstring():
    assert deindent_docstring(None) == ""
    assert deindent_docstring("One line.") == "One line."
    assert deindent_docstring("First\n    second\n    third\n    ") == "First\nsecond\nthird"


# ------------------------------------------------------------------ _graph_info


def test_graph_info_is_plain_json_with_metaflow_keys():
    graph = FlowGraph(cases.LinearFlow)
    info = graph.to_info(["alpha", "beta"])
    assert list(info) == [
        "file",
        "start_step",
        "end_step",
        "parameters",
        "constants",
        "steps",
        "graph_structure",
        "doc",
        "decorators",
        "extensions",
    ]
    assert json.loads(json.dumps(info)) == info  # only plain JSON types
    assert info["file"] == "cases.py"
    assert info["parameters"] == [
        {"name": "alpha", "type": "Parameter"},
        {"name": "beta", "type": "Parameter"},
    ]
    assert info["constants"] == []
    assert info["decorators"] == []
    assert info["extensions"] == {"installed": {}}
    assert info["graph_structure"] == ["start", "middle", "end"]
    assert info["doc"] == graph.doc
    middle = info["steps"]["middle"]
    assert middle == {
        "name": "middle",
        "type": "linear",
        "line": line_of(cases.LinearFlow.middle),
        "source_file": graph.file,
        "doc": "",
        "decorators": [
            {
                "name": "retry",
                "attributes": {"times": 3},
                "statically_defined": True,
                "inserted_by": None,
            },
            {
                "name": "catch",
                "attributes": {"var": "err"},
                "statically_defined": True,
                "inserted_by": None,
            },
        ],
        "next": ["end"],
        "node_info": {},
    }


@pytest.mark.parametrize(
    "flow",
    [
        cases.SplitFlow,
        cases.ForeachFlow,
        cases.NestedForeachFlow,
        cases.SplitInForeachFlow,
        cases.SwitchFlow,
        cases.SwitchLoopFlow,
        cases.SwitchInForeachFlow,
    ],
    ids=lambda c: c.__name__,
)
def test_graph_info_covers_every_step(flow):
    graph = FlowGraph(flow)
    info = graph.to_info([], constants=["items"] if flow is cases.ForeachFlow else None)
    json.dumps(info)
    assert set(info["steps"]) == set(graph.nodes)
    for name, step in info["steps"].items():
        node = graph[name]
        assert step["next"] == node.out_funcs
        assert step["line"] == node.func_lineno
        if node.type == "foreach":
            assert step["type"] == "split-foreach"
            assert step["foreach_artifact"] == node.foreach_param
        if node.matching_join:
            assert step["matching_join"] == node.matching_join
    if flow is cases.ForeachFlow:
        assert info["constants"] == [{"name": "items", "type": "list"}]


def test_output_steps_static_split():
    steps, structure = FlowGraph(cases.SplitFlow).output_steps()
    assert structure == ["start", [["a"], ["b", "b2"]], "join", "end"]
    assert steps["start"]["type"] == "split-static"
    assert steps["start"]["matching_join"] == "join"
    assert steps["join"]["type"] == "join"
    assert list(steps) == ["start", "a", "b", "b2", "join", "end"]


def test_output_steps_needs_start_and_end():
    with pytest.raises(ValueError, match="no start step"):
        FlowGraph(cases.BadNoStart).output_steps()


# ----------------------------------------------------------------- show / str


def test_describe_matches_metaflow_show():
    text = FlowGraph(cases.LinearFlow).describe()
    assert text == (
        "\n"
        "A linear flow.\n"
        "\n"
        "It has two lines of doc.\n"
        "\n"
        "Step start\n"
        "    Begin here.\n"
        "    => middle\n"
        "\n"
        "@retry\n"
        "@catch\n"
        "Step middle\n"
        "    ?\n"
        "    => end\n"
        "\n"
        "Step end\n"
        "    Finish.\n"
        "    \n"
        "    Nothing else.\n"
        "\n"
    )


def test_describe_lists_every_branch():
    text = FlowGraph(cases.SwitchLoopFlow).describe()
    assert "Step body\n    ?\n    => body, end\n" in text
    assert text.startswith("\nLoops in 'body' until done.\n")


def test_str_and_dot_mention_every_step():
    graph = FlowGraph(cases.SwitchFlow)
    assert all(f"[{name} " in str(graph) for name in graph.nodes)
    dot = graph.output_dot()
    assert dot.startswith("digraph SwitchFlow {")
    assert 'start -> big [label="big"' in dot


def test_wide_graph_is_fast():
    """Metaflow walks every path (exponential in sequential splits); we must not."""
    ns: dict = {}
    lines = ["from ledgerflow.decorators import step", "class Wide:"]
    n = 25
    lines += ["    @step", "    def start(self):", "        self.next(self.s0)"]
    for i in range(n):
        lines += [
            "    @step",
            f"    def s{i}(self):",
            f"        self.next(self.a{i}, self.b{i})",
            "    @step",
            f"    def a{i}(self):",
            f"        self.next(self.j{i})",
            "    @step",
            f"    def b{i}(self):",
            f"        self.next(self.j{i})",
            "    @step",
            f"    def j{i}(self, inputs):",
            f"        self.next(self.{f's{i + 1}' if i + 1 < n else 'end'})",
        ]
    lines += ["    @step", "    def end(self):", "        pass"]
    source = "\n".join(lines) + "\n"
    # inspect needs a real file: write it next to the test's tmp dir (cwd).
    path = os.path.abspath("wide_flow.py")
    with open(path, "w") as fh:
        fh.write(source)
    exec(compile(source, path, "exec"), ns)  # noqa: S102 - our own generated source
    graph = FlowGraph(ns["Wide"])
    assert graph["s24"].matching_join == "j24"
    assert graph.sorted_nodes[-1] == "end"
    from ledgerflow import lint

    lint.check(graph)


TRICKY_SOURCE = '''
import functools


def deco(f):
    @functools.wraps(f)
    def wrapper(*a, **k):
        return f(*a, **k)
    return wrapper


class Outer:
    @staticmethod
    @deco
    def decorated(x):  # a comment
        return x

    @deco
    @deco
    def twice(
        self,
        y,
    ):
        """Doc."""
        if y:
            return 1
        # a trailing comment inside the body

    def plain(self): return 2

    class Inner:
        def nested(self):
            def local():
                pass
            return local


async def coroutine():
    await other()
'''


def test_function_source_lines_match_inspect(tmp_path):
    # The graph reads step sources from one parse of the file; the lines must parse to what
    # inspect.getsourcelines gives (decorators, nesting, wrapped functions). Comments after a
    # body's last statement are not part of its AST span, and need not be.
    import importlib.util
    import inspect
    import sys

    from ledgerflow.sourcecode import function_source_lines

    path = tmp_path / "tricky_source.py"
    path.write_text(TRICKY_SOURCE)
    spec = importlib.util.spec_from_file_location("tricky_source", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["tricky_source"] = module
    spec.loader.exec_module(module)
    functions = [
        module.deco,
        module.Outer.decorated,
        module.Outer.twice,
        module.Outer.plain,
        module.Outer.Inner.nested,
        module.Outer.Inner().nested(),
        module.coroutine,
    ]
    for func in functions:
        expected_lines, expected_first = inspect.getsourcelines(inspect.unwrap(func))
        lines, first = function_source_lines(func)
        assert first == expected_first, func
        assert "".join(expected_lines).startswith("".join(lines)), func
        assert _parsed(lines) == _parsed(expected_lines), func


def _parsed(lines: list[str]) -> str:
    import ast
    import textwrap

    return ast.dump(ast.parse(textwrap.dedent("".join(lines))), include_attributes=True)
