"""The static graph of a flow, read from the source of its steps.

A port of Metaflow's ``metaflow/graph.py`` (``FlowGraph`` / ``DAGNode``): every
method marked with ``@step`` becomes a :class:`DAGNode`; the last statement of
its body (``self.next(...)``) decides the node's type and its out-edges. A
traversal from ``start`` then fills in the split/join bookkeeping that the
linter (:mod:`ledgerflow.lint`) and the runtime rely on.

Node types, as in Metaflow:

``start``        the entry step (when it is a plain linear step)
``end``          the terminal step
``linear``       ``self.next(self.a)``
``split``        ``self.next(self.a, self.b)`` (static fan-out)
``foreach``      ``self.next(self.a, foreach='items')``
``split-switch`` ``self.next({'x': self.a, 'y': self.b}, condition='var')``
``join``         a step taking ``(self, inputs)`` with ``self.next(self.a)``

A node whose tail is not a recognised ``self.next(...)`` keeps ``type=None``
(or the type implied by the parts that did parse) and ``invalid_tail_next``
is set; the linter reports it.

This module does no I/O besides reading step source (:mod:`ledgerflow.sourcecode`).
"""

from __future__ import annotations

import ast
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .parameters import class_constants
from .sourcecode import class_file, function_file, function_source_lines

__all__ = ["DAGNode", "FlowGraph", "deindent_docstring", "to_pod"]

INDENT = " " * 4


def deindent_docstring(doc: str | None) -> str:
    """Remove the common indent of a docstring (or of a block of source), as Metaflow does."""
    if not doc:
        return ""
    saw_first_line = False
    matched_indent = None
    for line in doc.splitlines():
        if line:
            matched_indent = re.match("[\t ]+", line)
            if matched_indent is not None or saw_first_line:
                break
            saw_first_line = True
    if matched_indent:
        return re.sub(r"\n" + matched_indent.group(), "\n", doc).strip()
    return doc


def to_pod(value: Any) -> Any:
    """Convert a value to plain JSON-able data (Metaflow's ``util.to_pod``)."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, dict):
        return {to_pod(k): to_pod(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple, frozenset)):
        return [to_pod(v) for v in value]
    if callable(value):
        return getattr(value, "__qualname__", str(value))
    return str(value)


def _literal(node: ast.AST) -> Any:
    """The value of a literal keyword-argument node, or None if it is not a literal."""
    if isinstance(node, ast.Constant):
        return node.value
    return None


def _self_attr(node: ast.AST) -> str | None:
    """'x' for the expression ``self.x``; None for anything else."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ):
        return node.attr
    return None


def _is_self_next(call: ast.AST) -> bool:
    return isinstance(call, ast.Call) and _self_attr(call.func) == "next"


def _target_attrs(target: ast.AST) -> Iterator[str]:
    """Names X of every ``self.X`` in an assignment target (tuples/lists/starred included)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _target_attrs(elt)
    elif isinstance(target, ast.Starred):
        yield from _target_attrs(target.value)
    else:
        name = _self_attr(target)
        if name is not None:
            yield name


def assigned_self_attrs(tree: ast.AST) -> tuple[set[str], bool]:
    """Every X set as ``self.X`` anywhere in ``tree``.

    Returns ``(names, dynamic)``; ``dynamic`` is True when the code also calls
    ``setattr(self, <non-literal>, ...)``, i.e. sets names we cannot see.
    """
    names: set[str] = set()
    dynamic = False
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(
            node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.comprehension)
        ):
            targets = [node.target]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets = [node.optional_vars]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "self"
        ):
            key = _literal(node.args[1])
            if isinstance(key, str):
                names.add(key)
            else:
                dynamic = True
        for target in targets:
            names.update(_target_attrs(target))
    return names, dynamic


class DAGNode:
    """One step of the flow, as read from its source.

    Attributes set from the source (``_parse``): ``name``, ``type``,
    ``func_lineno`` (the ``def`` line), ``tail_next_lineno`` (line of the final
    ``self.next``, 0 if none), ``source_file``, ``doc``, ``decorators`` (the objects, as
    Metaflow's), ``decorator_names``, ``out_funcs``, ``num_args``, ``foreach_param``, ``condition``,
    ``switch_cases``, ``has_tail_next``, ``invalid_tail_next``,
    ``invalid_reason`` (why the tail did not parse, or None), ``num_next_calls``
    and ``next_call_linenos`` (every ``self.next(...)`` in the body),
    ``assigned_attrs`` and ``dynamic_setattr``; Metaflow's ``parallel_step``,
    ``num_parallel``, ``parallel_foreach``, ``wrappers``, ``config_decorators``,
    ``node_info``, ``is_start_step`` and ``is_end_step`` too.

    Attributes set by :class:`FlowGraph`: ``in_funcs``, ``split_parents``,
    ``split_branches``, ``matching_join``, ``is_inside_foreach``.
    """

    def __init__(
        self,
        func_ast: ast.FunctionDef | ast.AsyncFunctionDef,
        decos: list[Any],
        doc: str | None,
        source_file: str,
        lineno: int,
        name: str | None = None,
    ):
        # `lineno` is the first line of the function's source (its first
        # decorator); func_ast.lineno counts from there to the `def`.
        self.name: str = name if name is not None else func_ast.name
        self.source_file = source_file
        self.func_lineno: int = lineno + func_ast.lineno - 1
        self.decorator_objects: list[Any] = list(decos or [])
        # The decorator objects, as Metaflow's (`.name`, `.attributes`); their names are
        # `decorator_names`.
        self.decorators: list[Any] = self.decorator_objects
        self.decorator_names: list[str] = [str(getattr(d, "name", d)) for d in decos or []]
        self.doc = deindent_docstring(doc)
        # Metaflow's other DAGNode fields. ledgerflow has no @parallel (refused before a
        # run), no custom step wrappers and no config decorators: their values say so.
        self.wrappers: list[Any] = []
        self.config_decorators: list[Any] = []
        self.parallel_step = "parallel" in self.decorator_names
        self.num_parallel = 0
        self.parallel_foreach = False
        self.node_info: dict[str, Any] = {}
        # Metaflow sets these only for a step function marked as the start or end (its newer
        # way to name them); steps named start and end read False there, as here.
        self.is_start_step = False
        self.is_end_step = False

        # populated by _parse
        self.type: str | None = None
        self.tail_next_lineno = 0
        self.out_funcs: list[str] = []
        self.has_tail_next = False
        self.invalid_tail_next = False
        self.invalid_reason: str | None = None
        self.num_args = 0
        self.switch_cases: dict[Any, str] = {}
        self.condition: str | None = None
        self.foreach_param: str | None = None
        self.num_next_calls = 0
        self.next_call_linenos: list[int] = []
        self.assigned_attrs: set[str] = set()
        self.dynamic_setattr = False
        self._parse(func_ast, lineno)

        # populated by FlowGraph._traverse_graph
        self.in_funcs: set[str] = set()
        self.split_parents: list[str] = []
        self.split_branches: list[str] = []
        self.matching_join: str | None = None
        # populated by FlowGraph._postprocess
        self.is_inside_foreach = False

    # -- parsing -----------------------------------------------------------------

    def _parse_switch_dict(self, dict_node: ast.Dict) -> dict[Any, str] | None:
        cases: dict[Any, str] = {}
        for key, value in zip(dict_node.keys, dict_node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, (str, int, float))):
                return None  # `**other`, a variable, an expression, or None/bytes
            target = _self_attr(value)
            if target is None:
                return None
            cases[key.value] = target
        return cases or None

    def _parse(self, func_ast: ast.FunctionDef | ast.AsyncFunctionDef, lineno: int) -> None:
        self.num_args = len(func_ast.args.args)

        calls = [n for n in ast.walk(func_ast) if isinstance(n, ast.Call) and _is_self_next(n)]
        self.next_call_linenos = sorted(lineno + c.lineno - 1 for c in calls)
        self.num_next_calls = len(calls)
        self.assigned_attrs, self.dynamic_setattr = assigned_self_attrs(func_ast)

        tail = func_ast.body[-1]
        if not (isinstance(tail, ast.Expr) and _is_self_next(tail.value)):
            return
        call = tail.value
        assert isinstance(call, ast.Call)
        self.has_tail_next = True
        self.invalid_tail_next = True
        self.tail_next_lineno = lineno + tail.lineno - 1
        keywords = {k.arg: k.value for k in call.keywords}

        if len(call.args) == 1 and isinstance(call.args[0], ast.Dict) and "condition" in keywords:
            # TYPE: split-switch
            cases = self._parse_switch_dict(call.args[0])
            condition = _literal(keywords["condition"])
            if cases is None:
                self.invalid_reason = (
                    "the switch keys must be string or number literals and the values "
                    "steps written as self.<step>"
                )
            elif not isinstance(condition, str):
                self.invalid_reason = (
                    "condition= must be a string literal naming an attribute, "
                    "e.g. condition='route'"
                )
            elif len(keywords) != 1:
                self.invalid_reason = "a switch takes only the condition= keyword"
            else:
                self.type = "split-switch"
                self.condition = condition
                self.switch_cases = cases
                self.out_funcs = list(cases.values())
                self.invalid_tail_next = False
            return

        targets = [_self_attr(a) for a in call.args]
        if any(t is None for t in targets):
            self.invalid_reason = "every target must be a step written as self.<step>"
            return
        self.out_funcs = [t for t in targets if t is not None]

        if len(keywords) == 1 and "foreach" in keywords:
            # TYPE: foreach
            self.type = "foreach"
            param = _literal(keywords["foreach"])
            if len(self.out_funcs) != 1:
                self.invalid_reason = "a foreach goes to exactly one step"
            elif not isinstance(param, str):
                self.invalid_reason = (
                    "foreach= must be a string literal naming an attribute, e.g. foreach='items'"
                )
            else:
                self.foreach_param = param
                self.invalid_tail_next = False
        elif len(keywords) == 0:
            if len(self.out_funcs) > 1:
                # TYPE: split
                self.type = "split"
                self.invalid_tail_next = False
            elif len(self.out_funcs) == 1:
                # TYPE: linear or join ("start" is assigned by FlowGraph)
                self.type = "join" if self.num_args > 1 else "linear"
                self.invalid_tail_next = False
            else:
                self.invalid_reason = "self.next() needs at least one target step"
        elif "num_parallel" in keywords:
            self.invalid_reason = "num_parallel= (@parallel steps) is not supported by ledgerflow"
        else:
            names = ", ".join(sorted(str(k) for k in keywords))
            self.invalid_reason = f"unsupported keyword argument(s): {names}"

    def __repr__(self) -> str:
        return f"<DAGNode {self.name} {self.type}>"

    def __str__(self) -> str:
        def brackets(names) -> str:
            return ", ".join(f"[{x}]" for x in names)

        matching_join = f"[{self.matching_join}]" if self.matching_join else None
        return (
            f"*[{self.name} {self.type} ({self.source_file} line {self.func_lineno})]*\n"
            f"    in_funcs={brackets(sorted(self.in_funcs))}\n"
            f"    out_funcs={brackets(self.out_funcs)}\n"
            f"    split_parents={brackets(self.split_parents)}\n"
            f"    split_branches={brackets(self.split_branches)}\n"
            f"    matching_join={matching_join}\n"
            f"    is_inside_foreach={self.is_inside_foreach}\n"
            f"    decorators={' | '.join(self.decorator_names)}\n"
            f"    num_args={self.num_args}\n"
            f"    has_tail_next={self.has_tail_next} (line {self.tail_next_lineno})\n"
            f"    invalid_tail_next={self.invalid_tail_next}\n"
            f"    foreach_param={self.foreach_param}\n"
            f"    condition={self.condition}\n"
            f"    -> {brackets(self.out_funcs)}"
        )


class FlowGraph:
    """The graph of ``flow_cls``'s steps.

    ``nodes`` maps step name to :class:`DAGNode`, in the iteration order:
    breadth-first topological order from ``start`` (a switch's loop back to
    itself is ignored for ordering), then steps unreachable from ``start`` in
    source order. ``sorted_nodes`` is Metaflow's order (names of the steps
    reachable from ``start``, as ``show`` prints them).
    """

    def __init__(self, flow_cls: type):
        self.flow_cls = flow_cls
        self.name: str = flow_cls.__name__
        self.doc = deindent_docstring(flow_cls.__doc__)
        self.start_step = "start"
        self.end_step = "end"
        nodes = self._create_nodes(flow_cls)
        self.file: str | None = self._class_file(flow_cls, nodes)
        self.nodes: dict[str, DAGNode] = nodes
        self.sorted_nodes: list[str] = []
        self._identify_start_end()
        self._traverse_graph()
        self._postprocess()
        self.nodes = {name: nodes[name] for name in self._iteration_order(nodes)}

    # -- construction ------------------------------------------------------------

    @staticmethod
    def _class_file(flow_cls: type, nodes: dict[str, DAGNode]) -> str | None:
        file = class_file(flow_cls)
        if file is None:
            for node in nodes.values():
                return node.source_file
        return file

    @staticmethod
    def _create_nodes(flow_cls: type) -> dict[str, DAGNode]:
        from .exceptions import LintError

        nodes: dict[str, DAGNode] = {}
        for element in dir(flow_cls):
            try:
                func = getattr(flow_cls, element)
            except Exception:  # noqa: BLE001, S112 - a descriptor refusing class access
                continue
            if not (callable(func) and getattr(func, "is_step", False)):
                continue
            try:
                source_file = function_file(func)
                source_lines, lineno = function_source_lines(func)
            except (OSError, TypeError) as exc:
                raise LintError(
                    f"Cannot read the source of step '{element}' ({exc}); define the flow "
                    "in a .py file so that its steps can be checked."
                ) from None
            source = deindent_docstring("".join(source_lines))
            func_ast = ast.parse(source).body[0]
            assert isinstance(func_ast, (ast.FunctionDef, ast.AsyncFunctionDef))
            nodes[element] = DAGNode(
                func_ast,
                getattr(func, "decorators", []),
                func.__doc__,
                source_file,
                lineno,
                name=element,
            )
        return nodes

    def _identify_start_end(self) -> None:
        # Only upgrade "linear" (or unparsed) to "start": a start that splits
        # keeps its split type, which the split/join checks need.
        if self.start_step in self.nodes:
            node = self.nodes[self.start_step]
            if node.type in (None, "linear"):
                node.type = "start"
        if self.end_step in self.nodes:
            self.nodes[self.end_step].type = "end"

    def _traverse_graph(self) -> None:
        """Metaflow's traversal, with the same result but without its exponential cost.

        Metaflow walks every path from start: a node's split bookkeeping is the
        one of the *last* path reaching it, and sorted_nodes moves a node to the
        end each time it is reached. A walk from a node depends only on the
        node, its split state and which of its descendants are already on the
        path, so a repeated walk is replayed from a memo of its net effect: the
        nodes it reached (in order of their last visit) and the last value it
        wrote to each attribute.
        """
        log: list[tuple] = []  # effects, in order: ("visit", name) / ("set", name, attr, value)
        memo: dict[tuple, tuple[list[str], dict[tuple[str, str], Any]]] = {}
        descendants = self._descendants()

        def visit(name: str) -> None:
            try:
                self.sorted_nodes.remove(name)
            except ValueError:
                pass
            self.sorted_nodes.append(name)
            log.append(("visit", name))

        def assign(name: str, attr: str, value: Any) -> None:
            setattr(self.nodes[name], attr, value)
            log.append(("set", name, attr, value))

        def traverse(node, seen, split_parents, split_branches):
            key = (
                node.name,
                tuple(split_parents),
                tuple(split_branches),
                frozenset(descendants[node.name].intersection(seen)),
            )
            if key in memo:
                visits, writes = memo[key]
                for name in visits:
                    visit(name)
                for (name, attr), value in writes.items():
                    assign(name, attr, value)
                return
            log_start = len(log)

            visit(node.name)
            split_parents, split_branches, add_split_branch = _split_bookkeeping(
                node, split_parents, split_branches, assign
            )

            for n in node.out_funcs:
                # the graph may contain loops and unknown steps: skip them
                if n not in seen and n in self:
                    child = self[n]
                    child.in_funcs.add(node.name)
                    traverse(
                        child,
                        seen + [n],
                        split_parents,
                        split_branches + ([n] if add_split_branch else []),
                    )

            memo[key] = _net_effect(log[log_start:])

        if self.start_step in self:
            traverse(self[self.start_step], [], [], [])

    def _descendants(self) -> dict[str, frozenset[str]]:
        """Steps reachable from each step through one or more known transitions."""
        result: dict[str, frozenset[str]] = {}
        for name in self.nodes:
            seen: set[str] = set()
            stack = [name]
            while stack:
                for n in self.nodes[stack.pop()].out_funcs:
                    if n in self.nodes and n not in seen:
                        seen.add(n)
                        stack.append(n)
            result[name] = frozenset(seen)
        return result

    def _postprocess(self) -> None:
        # A node is inside a foreach when a foreach is among its split parents,
        # unless the node is that foreach's join.
        for node in self.nodes.values():
            foreaches = [p for p in node.split_parents if self.nodes[p].type == "foreach"]
            if [f for f in foreaches if self.nodes[f].matching_join != node.name]:
                node.is_inside_foreach = True

    def _iteration_order(self, nodes: dict[str, DAGNode]) -> list[str]:
        """Kahn's algorithm (FIFO) over the steps reachable from start, then the rest."""
        reachable: list[str] = []
        if self.start_step in nodes:
            seen = {self.start_step}
            queue = deque([self.start_step])
            while queue:
                name = queue.popleft()
                reachable.append(name)
                for n in nodes[name].out_funcs:
                    if n in nodes and n not in seen:
                        seen.add(n)
                        queue.append(n)
        reach_set = set(reachable)
        indegree = {n: 0 for n in reachable}
        for name in reachable:
            for n in set(nodes[name].out_funcs):
                if n in reach_set and n != name:
                    indegree[n] += 1
        order: list[str] = []
        placed: set[str] = set()
        ready = deque(n for n in reachable if indegree[n] == 0)
        while len(order) < len(reachable):
            if not ready:  # a loop: release the earliest-discovered waiting step
                ready.append(next(n for n in reachable if n not in placed))
            name = ready.popleft()
            if name in placed:
                continue
            order.append(name)
            placed.add(name)
            for n in dict.fromkeys(nodes[name].out_funcs):
                if n in indegree and n != name and n not in placed:
                    indegree[n] -= 1
                    if indegree[n] == 0:
                        ready.append(n)
        rest = sorted(
            (n for n in nodes if n not in placed),
            key=lambda n: (
                nodes[n].source_file != self.file,
                nodes[n].source_file,
                nodes[n].func_lineno,
                n,
            ),
        )
        return order + rest

    # -- container protocol ------------------------------------------------------

    def __getitem__(self, name: str) -> DAGNode:
        return self.nodes[name]

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __iter__(self) -> Iterator[DAGNode]:
        return iter(list(self.nodes.values()))

    def __len__(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        return "\n".join(str(self[n]) for n in self.sorted_nodes)

    def __repr__(self) -> str:
        return f"<FlowGraph {self.name}: {', '.join(self.nodes)}>"

    # -- outputs -----------------------------------------------------------------

    def describe(self) -> str:
        """The text ``python flow.py show`` prints (Metaflow's ``show``, without colours)."""
        out = [f"\n{self.doc}\n"]
        for name in self.sorted_nodes:
            node = self[name]
            out.append("\n")
            for deco in node.decorator_names:
                out.append(f"@{deco}\n")
            out.append(f"Step {node.name}\n")
            doc = node.doc if node.doc else "?"
            out.append("\n".join(INDENT + x for x in doc.splitlines()) + "\n")
            if node.type != "end":
                out.append(f"{INDENT}=> {', '.join(node.out_funcs)}\n")
        out.append("\n")
        return "".join(out)

    def output_dot(self) -> str:
        """The graph in Graphviz dot format (Metaflow's ``output-dot``)."""

        def edge_specs():
            for node in self.nodes.values():
                if node.type == "split-switch":
                    for case_value, step_name in node.switch_cases.items():
                        yield (
                            f'{node.name} -> {step_name} [label="{case_value}" '
                            'color="blue" fontcolor="blue"];'
                        )
                else:
                    for edge in node.out_funcs:
                        yield f"{node.name} -> {edge};"

        def node_specs():
            for node in self.nodes.values():
                if node.type == "split-switch":
                    label = f"switch: {node.condition}" if node.condition else "switch"
                    yield (
                        f'"{node.name}" '
                        f'[ label = <<b>{node.name}</b><br/><font point-size="9">{label}</font>> '
                        '  fontname = "Helvetica" '
                        '  shape = "hexagon" '
                        '  style = "filled" fillcolor = "lightgreen" ];'
                    )
                else:
                    nodetype = "join" if node.num_args > 1 else node.type
                    yield (
                        f'"{node.name}"'
                        f'[ label = <<b>{node.name}</b> | <font point-size="10">{nodetype}</font>> '
                        '  fontname = "Helvetica" '
                        '  shape = "record" ];'
                    )

        nodes, edges = "\n".join(node_specs()), "\n".join(edge_specs())
        return f"digraph {self.name} {{\n{nodes}\n{edges}\n}}"

    @staticmethod
    def _node_to_type(node: DAGNode) -> str:
        if node.type in ("linear", "start", "end", "join"):
            return node.type
        if node.type == "split":
            return "split-static"
        if node.type == "foreach":
            return "split-foreach"
        if node.type == "split-switch":
            return "split-switch"
        return "unknown"

    @staticmethod
    def _decorator_to_dict(deco: Any) -> dict[str, Any]:
        d = {
            "name": str(getattr(deco, "name", deco)),
            "attributes": to_pod(getattr(deco, "attributes", {}) or {}),
            "statically_defined": bool(getattr(deco, "statically_defined", True)),
            "inserted_by": to_pod(getattr(deco, "inserted_by", None)),
        }
        to_info = getattr(deco, "to_info", None)
        if callable(to_info):
            d.update(to_pod(to_info()))
        return d

    def _node_to_dict(self, name: str, node: DAGNode) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": name,
            "type": self._node_to_type(node),
            "line": node.func_lineno,
            "source_file": node.source_file,
            "doc": node.doc,
            "decorators": [
                self._decorator_to_dict(deco)
                for deco in node.decorator_objects
                if not str(getattr(deco, "name", deco)).startswith("_")
            ],
            "next": list(node.out_funcs),
            "node_info": {},
        }
        if d["type"] == "split-foreach":
            d["foreach_artifact"] = node.foreach_param
        elif d["type"] == "split-switch":
            d["condition"] = node.condition
            d["switch_cases"] = to_pod(node.switch_cases)
        if node.matching_join:
            d["matching_join"] = node.matching_join
        return d

    def output_steps(self) -> tuple[dict[str, dict[str, Any]], list[Any]]:
        """``(steps_info, graph_structure)`` exactly as Metaflow's ``FlowGraph.output_steps``.

        Only meaningful for a graph that passes :func:`ledgerflow.lint.check`.
        ``graph_structure`` is a nested list: a step name per linear step, and
        after each split a list with one block per branch.
        """
        steps_info: dict[str, dict[str, Any]] = {}

        def populate_block(start_name, end_name, above=()):
            # `above`: the steps on the way here, so a switch looping back stops there.
            cur_name = start_name
            resulting_list: list[Any] = []
            while cur_name != end_name:
                cur_node = self.nodes[cur_name]
                steps_info[cur_name] = self._node_to_dict(cur_name, cur_node)
                resulting_list.append(cur_name)
                node_type = self._node_to_type(cur_node)
                path = (*above, *(n for n in resulting_list if isinstance(n, str)))
                if node_type in ("split-static", "split-foreach"):
                    resulting_list.append(
                        [populate_block(s, cur_node.matching_join, path)
                         for s in cur_node.out_funcs]
                    )  # fmt: skip
                    cur_name = cur_node.matching_join
                elif node_type == "split-switch":
                    # A case looping back (to itself or an earlier step) is already placed.
                    resulting_list.append(
                        [populate_block(s, end_name, path) for s in cur_node.out_funcs
                         if s not in path]
                    )  # fmt: skip
                    cur_name = end_name
                elif cur_node.out_funcs:
                    cur_name = cur_node.out_funcs[0]
                else:
                    break
            return resulting_list

        missing = [s for s in (self.start_step, self.end_step) if s not in self]
        if missing:
            raise ValueError(
                f"Cannot compute graph structure: the flow has no {' or '.join(missing)} "
                f"step; add a @step named {' and '.join(missing)}."
            )
        graph_structure = populate_block(self.start_step, self.end_step)
        steps_info[self.end_step] = self._node_to_dict(self.end_step, self.nodes[self.end_step])
        graph_structure.append(self.end_step)
        return steps_info, graph_structure

    def to_info(
        self,
        parameters: Iterable[Any] = (),
        constants: Iterable[Any] | None = None,
    ) -> dict[str, Any]:
        """The ``_graph_info`` artifact Metaflow stores with every run.

        ``parameters`` are parameter names (or ready ``{'name', 'type'}`` dicts);
        ``constants`` are class-constant names (their type is read from the
        flow class) or ready dicts. Contains only JSON types.
        """

        def entries(items, default_type):
            out = []
            for item in items or ():
                if isinstance(item, dict):
                    out.append({"name": str(item["name"]), "type": str(item.get("type", ""))})
                    continue
                kind = default_type
                if kind is None:
                    kind = type(getattr(self.flow_cls, str(item), None)).__name__
                out.append({"name": str(item), "type": kind})
            return out

        if constants is None:
            constants = list(class_constants(self.flow_cls))
        steps_info, graph_structure = self.output_steps()
        return {
            "file": os.path.basename(self.file) if self.file else None,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "parameters": entries(parameters, "Parameter"),
            "constants": entries(constants, None),
            "steps": steps_info,
            "graph_structure": graph_structure,
            "doc": self.doc,
            "decorators": [],
            "extensions": {"installed": {}},
        }


# One graph per flow class and process, built on first use.
_GRAPHS: dict[type, FlowGraph] = {}


def flow_graph(cls: type) -> FlowGraph:
    """The flow class's graph, built once per process."""
    graph = _GRAPHS.get(cls)
    if graph is None:
        graph = _GRAPHS[cls] = FlowGraph(cls)
    return graph


def keep_graph(cls: type, graph: FlowGraph) -> None:
    """Use a graph built elsewhere for this class (a Dask worker need not parse the flow's
    source: flowclasses.register_flow_class hands it the one its client built)."""
    _GRAPHS[cls] = graph


def _split_bookkeeping(
    node: DAGNode, split_parents: list[str], split_branches: list[str],
    assign: Callable[[str, str, Any], None],
) -> tuple[list[str], list[str], bool]:  # fmt: skip
    """Metaflow's split bookkeeping for a node reached on a path: record the node's split
    parents and branches (a join also closes its split); return those its children inherit,
    and whether the node opens a split (its children then start branches of their own)."""
    if node.type in ("split", "foreach"):
        assign(node.name, "split_parents", split_parents)
        assign(node.name, "split_branches", split_branches)
        return split_parents + [node.name], split_branches, True
    if node.type == "join":
        # ignore joins without splits
        if split_parents:
            assign(split_parents[-1], "matching_join", node.name)
            assign(node.name, "split_parents", split_parents)
            assign(node.name, "split_branches", split_branches[:-1])
            return split_parents[:-1], split_branches[:-1], False
        return split_parents, split_branches, False
    assign(node.name, "split_parents", split_parents)  # split-switch, linear, start, end
    assign(node.name, "split_branches", split_branches)
    return split_parents, split_branches, False


def _net_effect(effects: list[tuple]) -> tuple[list[str], dict[tuple[str, str], Any]]:
    """What a walk did, to replay it: the nodes it reached, in order of their last visit,
    and the last value it wrote to each (node, attribute)."""
    last_visit = {e[1]: i for i, e in enumerate(effects) if e[0] == "visit"}
    writes: dict[tuple[str, str], Any] = {}
    for e in effects:
        if e[0] == "set":
            writes[(e[1], e[2])] = e[3]
    return sorted(last_visit, key=last_visit.__getitem__), writes
