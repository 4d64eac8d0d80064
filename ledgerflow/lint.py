"""Static checks of a flow's graph, run before anything executes.

A port of Metaflow's ``metaflow/lint.py`` rules that apply to ledgerflow, plus
three of ours (``check_single_next``, ``check_foreach_sources`` and, in
lint_imports.py, ``check_metaflow_imports``). Each rule
is a small function taking the :class:`~ledgerflow.graph.FlowGraph`; it raises
:class:`~ledgerflow.exceptions.LintError` with the step's file and line. Every
message says what is wrong, names the step in single quotes, and ends with
the fix.

:func:`check` runs the rules in :data:`LINT_RULES` order and stops at the
first failure.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Callable
from typing import Any

from .exceptions import LintError
from .graph import DAGNode, FlowGraph, assigned_self_attrs, deindent_docstring
from .lint_imports import check_metaflow_imports
from .sourcecode import function_source_lines

__all__ = ["LINT_RULES", "RESERVED_WORDS", "check"] + [
    "check_reserved_words",
    "check_basic_steps",
    "check_start_end_degree",
    "check_that_end_is_end",
    "check_step_names",
    "check_num_args",
    "check_single_next",
    "check_static_transitions",
    "check_valid_transitions",
    "check_unknown_transitions",
    "check_for_acyclicity",
    "check_for_orphans",
    "check_empty_foreaches",
    "check_split_join_balance",
    "check_switch_splits",
    "check_ambiguous_joins",
    "check_foreach_sources",
    "check_metaflow_imports",
]

RESERVED_WORDS = frozenset({"name", "next", "input", "index", "cmd"})


def _q(names) -> str:
    """'a', 'b' and 'c'"""
    quoted = [f"'{n}'" for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _lines(linenos: list[int]) -> str:
    nums = [str(n) for n in linenos]
    if len(nums) == 1:
        return f"line {nums[0]}"
    return "lines " + ", ".join(nums[:-1]) + " and " + nums[-1]


def _fail(msg: str, node: DAGNode | None = None, lineno: int | None = None) -> None:
    if node is not None and not lineno:
        lineno = node.func_lineno
    raise LintError(msg, lineno or None, node.source_file if node is not None else None)


def _class_location(graph: FlowGraph) -> tuple[int | None, str | None]:
    import inspect  # only a failing check needs it

    try:
        _, lineno = inspect.getsourcelines(graph.flow_cls)
        return lineno, graph.file
    except (OSError, TypeError):
        return None, graph.file


# -- Metaflow's rules ----------------------------------------------------------


def check_reserved_words(graph: FlowGraph) -> None:
    reserved = ", ".join(sorted(RESERVED_WORDS))
    for node in graph:
        if node.name in RESERVED_WORDS:
            _fail(
                f"Step '{node.name}' uses a reserved name ({reserved} are reserved); "
                "rename the step.",
                node,
            )


def check_basic_steps(graph: FlowGraph) -> None:
    for name in (graph.start_step, graph.end_step):
        if name not in graph:
            lineno, source_file = _class_location(graph)
            hint = "where the flow begins" if name == graph.start_step else "where the flow ends"
            raise LintError(
                f"Flow '{graph.name}' has no '{name}' step; add a method "
                f"'def {name}(self):' decorated with @step {hint}.",
                lineno,
                source_file,
            )


def check_start_end_degree(graph: FlowGraph) -> None:
    start = graph[graph.start_step]
    if start.in_funcs:
        _fail(
            f"The start step '{start.name}' is the target of self.next() in "
            f"{_q(sorted(start.in_funcs))}; nothing may transition back to 'start', so "
            "point those transitions at another step.",
            start,
        )
    end = graph[graph.end_step]
    if end.out_funcs:
        _fail(
            f"The end step '{end.name}' has outgoing transitions to {_q(end.out_funcs)}; "
            "the end step finishes the flow, so remove its self.next() call.",
            end,
            end.tail_next_lineno,
        )


def check_that_end_is_end(graph: FlowGraph) -> None:
    node = graph[graph.end_step]
    if node.has_tail_next or node.invalid_tail_next or node.num_next_calls:
        lineno = node.tail_next_lineno or node.next_call_linenos[0]
        _fail(
            f"The end step '{node.name}' calls self.next() (line {lineno}); the end step "
            "finishes the flow, so remove the call.",
            node,
            lineno,
        )
    if node.num_args > 1:
        _fail(
            f"The end step '{node.name}' is a join step (it takes an extra argument); "
            f"add a separate join step that ends with self.next(self.{node.name}) and "
            f"define it as 'def {node.name}(self):'.",
            node,
        )


def check_step_names(graph: FlowGraph) -> None:
    for node in graph:
        if re.search("[^a-z0-9_]", node.name) or node.name[0] == "_":
            suggestion = re.sub("[^a-z0-9_]", "_", node.name.lower()).lstrip("_") or "step"
            _fail(
                f"Step '{node.name}' has an invalid name; use only lowercase ASCII letters, "
                f"digits and underscores, not starting with an underscore "
                f"(e.g. '{suggestion}').",
                node,
            )


def check_num_args(graph: FlowGraph) -> None:
    for node in graph:
        if node.num_args > 2:
            _fail(
                f"Step '{node.name}' takes {node.num_args} arguments; a step takes only "
                "'self', and a join step 'self' and 'inputs', so remove the extra arguments.",
                node,
            )
        elif node.num_args == 2 and node.type not in ("join", None):
            # type None (no valid self.next) is reported by the transition rules.
            what = "the end step" if node.type == "end" else f"a {node.type} step"
            _fail(
                f"Step '{node.name}' is both a join step (it takes an extra argument) and "
                f"{what}; add a separate step so that the join and the split are different "
                "steps.",
                node,
            )
        elif node.num_args == 0:
            _fail(
                f"Step '{node.name}' is missing the 'self' argument; define it as "
                f"'def {node.name}(self):'.",
                node,
            )


def check_single_next(graph: FlowGraph) -> None:
    """Ours: self.next() must be called exactly once per step."""
    for node in graph:
        if node.num_next_calls > 1:
            _fail(
                f"Step '{node.name}' calls self.next() {node.num_next_calls} times "
                f"({_lines(node.next_call_linenos)}); call it exactly once, as the last "
                "statement of the step.",
                node,
                node.next_call_linenos[1],
            )


def check_static_transitions(graph: FlowGraph) -> None:
    for node in graph:
        if node.type == "end" or node.has_tail_next:
            continue
        if node.num_next_calls:
            lineno = node.next_call_linenos[0]
            _fail(
                f"Step '{node.name}' calls self.next() on line {lineno}, but not as its last "
                "statement; move the self.next() call to the end of the step.",
                node,
                lineno,
            )
        _fail(
            f"Step '{node.name}' does not end with self.next(); add a transition such as "
            "self.next(self.end) as its last line.",
            node,
        )


def check_valid_transitions(graph: FlowGraph) -> None:
    for node in graph:
        if node.type != "end" and node.has_tail_next and node.invalid_tail_next:
            reason = f" ({node.invalid_reason})" if node.invalid_reason else ""
            _fail(
                f"Step '{node.name}' ends with an unsupported self.next() transition{reason}; "
                "use one of self.next(self.a), self.next(self.a, self.b), "
                "self.next(self.a, foreach='items') or "
                "self.next({'key': self.a, 'other': self.b}, condition='var').",
                node,
                node.tail_next_lineno,
            )


def check_unknown_transitions(graph: FlowGraph) -> None:
    for node in graph:
        unknown = [n for n in node.out_funcs if n not in graph]
        if not unknown:
            continue
        target = unknown[0]
        attr = getattr(graph.flow_cls, target, None)
        if callable(attr):
            fix = f"decorate '{target}' with @step"
        else:
            fix = f"define a @step named '{target}' or fix the self.next() call"
        _fail(
            f"Step '{node.name}' transitions to '{target}', which is not a step of this "
            f"flow; {fix}.",
            node,
            node.tail_next_lineno,
        )


def check_for_acyclicity(graph: FlowGraph) -> None:
    """No loops, except through a switch: a switch step may loop back to itself (Metaflow's
    recursive step) or, beyond Metaflow, to an earlier step, as long as the loop has no
    split, foreach or join in it (a loop must not open or close a branch)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n.name: WHITE for n in graph}

    def switch_loop(loop: list[str], node: DAGNode) -> bool:
        inner = [graph[s] for s in loop[:-1]]
        return node.type == "split-switch" and all(
            n.type in ("linear", "split-switch", "start") for n in inner
        )

    def visit(node: DAGNode, path: list[str]) -> None:
        color[node.name] = GREY
        path.append(node.name)
        for n in node.out_funcs:
            if node.type == "split-switch" and n == node.name:
                continue
            if color[n] == GREY:
                loop = path[path.index(n) :] + [n]
                if switch_loop(loop, node):
                    continue
                _fail(
                    f"Steps {' -> '.join(repr(s) for s in loop)} form a loop; only a switch "
                    "step may loop, back to itself or to an earlier step with no split or join "
                    "in between "
                    f"(e.g. self.next({{'again': self.{node.name}, 'done': self.end}}, "
                    "condition='flag')), so break the loop by fixing the self.next() "
                    "transitions.",
                    node,
                    node.tail_next_lineno,
                )
            if color[n] == WHITE:
                visit(graph[n], path)
        path.pop()
        color[node.name] = BLACK

    for node in graph:
        if color[node.name] == WHITE:
            visit(node, [])


def check_for_orphans(graph: FlowGraph) -> None:
    seen = {graph.start_step}
    stack = [graph[graph.start_step]]
    while stack:
        for n in stack.pop().out_funcs:
            if n not in seen:
                seen.add(n)
                stack.append(graph[n])
    for node in graph:  # unreachable steps come last, in source order
        if node.name not in seen:
            _fail(
                f"Step '{node.name}' is unreachable from '{graph.start_step}'; add "
                f"self.next(self.{node.name}) to another step, or remove '{node.name}'.",
                node,
            )


def check_split_join_balance(graph: FlowGraph) -> None:
    def parents(n: str) -> tuple[str, ...]:
        if graph[n].type == "join":
            return tuple(graph[n].split_parents[:-1])
        return tuple(graph[n].split_parents)

    def branch_of(n: str) -> str:
        branches = graph[n].split_branches
        return branches[-1] if branches else n

    done: set[tuple[str, tuple]] = set()

    def traverse(node: DAGNode, split_stack: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        key = (node.name, split_stack)
        if key in done:  # the outcome depends only on (node, stack)
            return
        done.add(key)
        new_stack = split_stack
        if node.type in ("split", "foreach"):
            new_stack = split_stack + ((node.name, tuple(node.out_funcs)),)
        elif node.type == "end":
            if split_stack:
                split_name, roots = split_stack[-1]
                _fail(
                    f"The end step '{node.name}' is reached before the split in step "
                    f"'{split_name}' (branches {_q(roots)}) is joined; add a join step "
                    f"(def join(self, inputs)) that all those branches lead to, before "
                    f"'{node.name}'.",
                    node,
                )
        elif node.type == "join":
            if not split_stack:
                _fail(
                    f"Step '{node.name}' takes an extra argument like a join step, but no "
                    "split comes before it; remove the 'inputs' argument, or add a split "
                    "(self.next(self.a, self.b) or a foreach) that leads to it.",
                    node,
                )
            split_name, roots = split_stack[-1]
            new_stack = split_stack[:-1]
            resolved = sorted({branch_of(n) for n in node.in_funcs})
            if set(resolved) != set(roots):
                _fail(
                    f"Step '{node.name}' is a join step reached from branch(es) "
                    f"{_q(resolved)}, but the split it should close, in step '{split_name}', "
                    f"has branch(es) {_q(roots)}; make exactly the branches of "
                    f"'{split_name}' lead to '{node.name}', and close any inner split with "
                    "a join step of its own first.",
                    node,
                )
            if len({parents(n) for n in node.in_funcs}) > 1:
                _fail(
                    f"Step '{node.name}' joins steps from unrelated splits; add a separate "
                    "join for each split so that every join closes exactly one split.",
                    node,
                )
        for n in node.out_funcs:
            if node.type == "split-switch" and n == node.name:
                continue
            traverse(graph[n], new_stack)

    traverse(graph[graph.start_step], ())


def check_switch_splits(graph: FlowGraph) -> None:
    for node in graph:
        if node.type != "split-switch":
            continue
        if len(node.out_funcs) < 2:
            _fail(
                f"Step '{node.name}' is a switch with {len(node.out_funcs)} case(s); a switch "
                "needs at least 2 cases, so add another case or use a plain "
                "self.next(self.step).",
                node,
                node.tail_next_lineno,
            )
        if not node.condition:
            _fail(
                f"Step '{node.name}' is a switch without a condition; add "
                "condition='attribute_name' to its self.next() call.",
                node,
                node.tail_next_lineno,
            )
        if not node.switch_cases:
            _fail(
                f"Step '{node.name}' is a switch without cases; pass a dict such as "
                "{'key': self.a, 'other': self.b} to its self.next() call.",
                node,
                node.tail_next_lineno,
            )


def check_empty_foreaches(graph: FlowGraph) -> None:
    for node in graph:
        if node.type == "foreach":
            joins = [n for n in node.out_funcs if graph[n].type == "join"]
            if joins:
                _fail(
                    f"Step '{node.name}' is a foreach that goes straight to the join step "
                    f"'{joins[0]}'; add at least one step between the foreach and its join "
                    "(it runs once per item).",
                    node,
                )


def check_ambiguous_joins(graph: FlowGraph) -> None:
    for node in graph:
        if node.type != "join":
            continue
        switches = [p for p in sorted(node.in_funcs) if graph[p].type == "split-switch"]
        if switches:
            _fail(
                f"Step '{node.name}' is a join step that switch step(s) {_q(switches)} lead "
                "to directly; a conditional path cannot go straight to a join, so add an "
                "ordinary step on that path before the join.",
                node,
            )


# -- ours ----------------------------------------------------------------------


def _helper_method_attrs(flow_cls: type | None) -> tuple[set[str], bool]:
    """Attributes set by the flow's non-step methods (helpers a step may call)."""
    names: set[str] = set()
    dynamic = False
    if flow_cls is None:
        return names, dynamic
    for klass in flow_cls.__mro__:
        if klass is object or klass.__module__.startswith("ledgerflow."):
            continue
        for value in vars(klass).values():
            func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            if not isinstance(func, types.FunctionType) or getattr(func, "is_step", False):
                continue
            try:
                source = deindent_docstring("".join(function_source_lines(func)[0]))
                found, dyn = assigned_self_attrs(ast.parse(source))
            except (OSError, TypeError, SyntaxError):
                return names, True  # cannot tell what it sets
            names |= found
            dynamic = dynamic or dyn
    return names, dynamic


def check_foreach_sources(graph: FlowGraph, flow_cls: type | None = None) -> None:
    """Ours: the attribute a foreach iterates must be set somewhere."""
    cls = flow_cls if flow_cls is not None else graph.flow_cls
    assigned: set[str] = set()
    for node in graph:
        if node.dynamic_setattr:
            return  # setattr(self, <expr>, ...) may set anything
        assigned |= node.assigned_attrs
    helper_attrs: set[str] | None = None
    for node in graph:
        param = node.foreach_param
        if node.type != "foreach" or not param or param in assigned:
            continue
        if cls is not None and hasattr(cls, param):
            continue  # a class attribute, constant or Parameter
        if helper_attrs is None:
            helper_attrs, dynamic = _helper_method_attrs(cls)
            if dynamic:
                return
        if param in helper_attrs:
            continue
        _fail(
            f"Step '{node.name}' does a foreach over self.{param}, but no step sets "
            f"self.{param}; assign it before self.next(..., foreach='{param}').",
            node,
            node.tail_next_lineno,
        )


check_foreach_sources.wants_flow_cls = True  # type: ignore[attr-defined]


LINT_RULES: list[Callable[..., None]] = [
    check_reserved_words,
    check_basic_steps,
    check_start_end_degree,
    check_that_end_is_end,
    check_step_names,
    check_num_args,
    check_single_next,
    check_static_transitions,
    check_valid_transitions,
    check_unknown_transitions,
    check_for_acyclicity,
    check_for_orphans,
    check_empty_foreaches,  # before the balance check, which would otherwise report it vaguely
    check_split_join_balance,
    check_switch_splits,
    check_ambiguous_joins,
    check_foreach_sources,
    check_metaflow_imports,  # lint_imports.py: a step importing metaflow
]


def check(graph: FlowGraph, flow_cls: Any = None) -> None:
    """Run every rule of :data:`LINT_RULES` in order; raise LintError on the first failure.

    ``flow_cls`` (defaults to the class the graph was built from) is used to
    find class attributes and Parameters a foreach may iterate over.
    """
    for rule in LINT_RULES:
        if getattr(rule, "wants_flow_cls", False):
            rule(graph, flow_cls)
        else:
            rule(graph)
