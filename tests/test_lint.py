"""ledgerflow.lint: every rule fires on its broken flow, with the right message and line."""

from __future__ import annotations

import inspect

import pytest

from ledgerflow import FlowSpec, lint, step
from ledgerflow.exceptions import LintError
from ledgerflow.graph import FlowGraph

from .flows.graph import cases


def line_of(func, needle: str = "def ") -> int:
    """Absolute line number of the first line of `func`'s source containing `needle`."""
    lines, start = inspect.getsourcelines(func)
    for offset, text in enumerate(lines):
        if needle in text:
            return start + offset
    raise AssertionError(f"{needle!r} not in {func.__name__}")


def lint_error(flow) -> tuple[LintError, str]:
    """The LintError check() raises for `flow`, and the name of the rule that raised it."""
    graph = FlowGraph(flow)
    for rule in lint.LINT_RULES:
        try:
            if getattr(rule, "wants_flow_cls", False):
                rule(graph, flow)
            else:
                rule(graph)
        except LintError as exc:
            with pytest.raises(LintError) as again:  # check() stops at the same error
                lint.check(graph, flow)
            assert str(again.value) == str(exc)
            return exc, rule.__name__
    raise AssertionError(f"{flow.__name__} passed every rule")


C = cases


class BadMetaflowImport(FlowSpec):
    """Metaflow's tutorial 03 after the import switch: a step still imports metaflow."""

    @step
    def start(self):
        from metaflow import Flow  # noqa: F401 - what is checked

        self.next(self.end)

    @step
    def end(self):
        pass


# flow, rule, substrings of the message, (function, needle) giving the expected line
RULE_CASES = [
    pytest.param(
        C.BadReserved,
        "check_reserved_words",
        ["Step 'input' uses a reserved name", "rename the step"],
        (C.BadReserved.input, "def "),
        id="reserved-word",
    ),
    pytest.param(
        C.BadNoStart,
        "check_basic_steps",
        ["Flow 'BadNoStart' has no 'start' step", "add a method 'def start(self):'"],
        (C.BadNoStart, "class "),
        id="no-start",
    ),
    pytest.param(
        C.BadNoEnd,
        "check_basic_steps",
        ["Flow 'BadNoEnd' has no 'end' step", "'def end(self):'"],
        (C.BadNoEnd, "class "),
        id="no-end",
    ),
    pytest.param(
        C.BadStartIncoming,
        "check_start_end_degree",
        [
            "The start step 'start' is the target of self.next() in 'start'",
            "point those transitions at another step",
        ],
        (C.BadStartIncoming.start, "def "),
        id="start-incoming",
    ),
    pytest.param(
        C.BadEndOutgoing,
        "check_start_end_degree",
        ["The end step 'end' has outgoing transitions to 'end'", "remove its self.next() call"],
        (C.BadEndOutgoing.end, "self.next"),
        id="end-outgoing",
    ),
    pytest.param(
        C.BadEndNext,
        "check_that_end_is_end",
        ["The end step 'end' calls self.next()", "remove the call"],
        (C.BadEndNext.end, "self.next"),
        id="end-calls-next",
    ),
    pytest.param(
        C.BadEndNextNotTail,
        "check_that_end_is_end",
        ["The end step 'end' calls self.next()", "remove the call"],
        (C.BadEndNextNotTail.end, "self.next"),
        id="end-calls-next-inside-if",
    ),
    pytest.param(
        C.BadEndJoin,
        "check_that_end_is_end",
        ["The end step 'end' is a join step", "add a separate join step", "self.next(self.end)"],
        (C.BadEndJoin.end, "def "),
        id="end-is-join",
    ),
    pytest.param(
        C.BadStepName,
        "check_step_names",
        ["Step 'Train' has an invalid name", "(e.g. 'train')"],
        (C.BadStepName.Train, "def "),
        id="step-name",
    ),
    pytest.param(
        C.BadTooManyArgs,
        "check_num_args",
        ["Step 'a' takes 3 arguments", "remove the extra arguments"],
        (C.BadTooManyArgs.a, "def "),
        id="too-many-args",
    ),
    pytest.param(
        C.BadJoinAndSplit,
        "check_num_args",
        [
            "Step 'join' is both a join step",
            "and a split step",
            "add a separate step so that the join and the split are different steps",
        ],
        (C.BadJoinAndSplit.join, "def "),
        id="join-and-split",
    ),
    pytest.param(
        C.BadNoSelf,
        "check_num_args",
        ["Step 'a' is missing the 'self' argument", "define it as 'def a(self):'"],
        (C.BadNoSelf.a, "def "),
        id="no-self",
    ),
    pytest.param(
        C.BadTwoNexts,
        "check_single_next",
        [
            "Step 'start' calls self.next() 2 times (lines {l1} and {l2})",
            "call it exactly once, as the last statement of the step.",
        ],
        (C.BadTwoNexts.start, "self.next(self.end)"),
        id="two-nexts",
    ),
    pytest.param(
        C.BadMissingNext,
        "check_static_transitions",
        ["Step 'train' does not end with self.next()", "self.next(self.end) as its last line"],
        (C.BadMissingNext.train, "def "),
        id="missing-next",
    ),
    pytest.param(
        C.BadNextNotLast,
        "check_static_transitions",
        [
            "Step 'train' calls self.next() on line",
            "but not as its last statement",
            "move the self.next() call to the end of the step",
        ],
        (C.BadNextNotLast.train, "self.next"),
        id="next-not-last",
    ),
    pytest.param(
        C.BadInvalidTransition,
        "check_valid_transitions",
        [
            "Step 'start' ends with an unsupported self.next() transition",
            "a foreach goes to exactly one step",
            "self.next(self.a, foreach='items')",
        ],
        (C.BadInvalidTransition.start, "self.next"),
        id="invalid-transition",
    ),
    pytest.param(
        C.BadSwitchVariableKey,
        "check_valid_transitions",
        [
            "Step 'start' ends with an unsupported self.next() transition",
            "switch keys must be string or number literals",
            "condition='var'",
        ],
        (C.BadSwitchVariableKey.start, "self.next"),
        id="switch-variable-key",
    ),
    pytest.param(
        C.BadUnknownTransition,
        "check_unknown_transitions",
        [
            "Step 'start' transitions to 'missing', which is not a step of this flow",
            "define a @step named 'missing'",
        ],
        (C.BadUnknownTransition.start, "self.next"),
        id="unknown-transition",
    ),
    pytest.param(
        C.BadNotAStep,
        "check_unknown_transitions",
        [
            "Step 'start' transitions to 'helper', which is not a step",
            "decorate 'helper' with @step",
        ],
        (C.BadNotAStep.start, "self.next"),
        id="target-not-decorated",
    ),
    pytest.param(
        C.BadLoop,
        "check_for_acyclicity",
        ["Steps 'a' -> 'b' -> 'a' form a loop", "only a switch step may loop", "break the loop"],
        (C.BadLoop.b, "self.next"),
        id="loop",
    ),
    pytest.param(
        C.BadSwitchBackLoop,
        "check_for_acyclicity",
        [
            "Steps 'body' -> 'a' -> 'join' -> 'check' -> 'body' form a loop",
            "no split or join in between",
        ],
        (C.BadSwitchBackLoop.check, "self.next"),
        id="switch-loop-across-a-split",
    ),
    pytest.param(
        C.BadOrphan,
        "check_for_orphans",
        [
            "Step 'lonely' is unreachable from 'start'",
            "add self.next(self.lonely) to another step, or remove 'lonely'",
        ],
        (C.BadOrphan.lonely, "def "),
        id="orphan",
    ),
    pytest.param(
        C.BadEmptyForeach,
        "check_empty_foreaches",
        [
            "Step 'start' is a foreach that goes straight to the join step 'join'",
            "add at least one step between the foreach and its join",
        ],
        (C.BadEmptyForeach.start, "def "),
        id="empty-foreach",
    ),
    pytest.param(
        C.BadUnjoinedSplit,
        "check_split_join_balance",
        [
            "The end step 'end' is reached before the split in step 'start'",
            "(branches 'a' and 'b') is joined",
            "add a join step",
        ],
        (C.BadUnjoinedSplit.end, "def "),
        id="split-never-joined",
    ),
    pytest.param(
        C.BadJoinMissingBranch,
        "check_split_join_balance",
        [
            "Step 'join' is a join step reached from branch(es) 'a1', 'a2' and 'b'",
            "the split it should close, in step 'a', has branch(es) 'a1' and 'a2'",
            "close any inner split with a join step of its own first",
        ],
        (C.BadJoinMissingBranch.join, "def "),
        id="join-wrong-branches",
    ),
    pytest.param(
        C.BadJoinWithoutSplit,
        "check_split_join_balance",
        [
            "Step 'join' takes an extra argument like a join step, but no split comes before it",
            "remove the 'inputs' argument",
        ],
        (C.BadJoinWithoutSplit.join, "def "),
        id="join-without-split",
    ),
    pytest.param(
        C.BadCrossJoin,
        "check_split_join_balance",
        ["Step 'ja' joins steps from unrelated splits", "add a separate join for each split"],
        (C.BadCrossJoin.ja, "def "),
        id="cross-join",
    ),
    pytest.param(
        C.BadSwitchOneCase,
        "check_switch_splits",
        ["Step 'start' is a switch with 1 case(s)", "add another case"],
        (C.BadSwitchOneCase.start, "self.next"),
        id="switch-one-case",
    ),
    pytest.param(
        C.BadSwitchToJoin,
        "check_ambiguous_joins",
        [
            "Step 'join' is a join step that switch step(s) 'a' lead to directly",
            "add an ordinary step on that path before the join",
        ],
        (C.BadSwitchToJoin.join, "def "),
        id="switch-straight-to-join",
    ),
    pytest.param(
        C.BadForeachSource,
        "check_foreach_sources",
        [
            (
                "Step 'start' does a foreach over self.items, but no step sets self.items; "
                "assign it before self.next(..., foreach='items')."
            )
        ],
        (C.BadForeachSource.start, "self.next"),
        id="foreach-over-unset-attribute",
    ),
    pytest.param(
        BadMetaflowImport,
        "check_metaflow_imports",
        [
            "Step 'start' imports metaflow (`from metaflow import Flow  # noqa: F401 - what is "
            "checked`)",
            "write `from ledgerflow import Flow` instead",
        ],
        (BadMetaflowImport.start, "from metaflow"),
        id="step-imports-metaflow",
    ),
]


@pytest.mark.parametrize("flow, rule, parts, where", RULE_CASES)
def test_rule(flow, rule, parts, where):
    exc, fired = lint_error(flow)
    assert fired == rule
    expected_line = line_of(*where)
    assert exc.line_no == expected_line
    assert exc.source_file == inspect.getsourcefile(flow)
    assert str(exc).startswith(f"{exc.source_file}:{expected_line}: ")
    if rule == "check_single_next":
        first = line_of(flow.start, "self.next")
        parts = [p.format(l1=first, l2=expected_line) for p in parts]
    for part in parts:
        assert part in exc.message
    assert "*" not in exc.message  # steps are quoted, not starred as in Metaflow
    assert exc.message.endswith(".") or exc.message.endswith(")")


def test_every_rule_has_a_case():
    covered = {p.values[1] for p in RULE_CASES}
    assert covered == {rule.__name__ for rule in lint.LINT_RULES}


@pytest.mark.parametrize(
    "flow",
    [
        C.LinearFlow,
        C.SplitFlow,
        C.ForeachFlow,
        C.NestedForeachFlow,
        C.SplitInForeachFlow,
        C.SwitchFlow,
        C.SwitchLoopFlow,
        C.SwitchBackLoop,
        C.SwitchInForeachFlow,
        C.ParamForeachFlow,
        C.HelperForeachFlow,
        C.InheritedFlow,
    ],
    ids=lambda c: c.__name__,
)
def test_valid_flows_pass(flow):
    assert lint.check(FlowGraph(flow), flow) is None
    assert lint.check(FlowGraph(flow)) is None  # the class defaults to the graph's own


def test_foreach_source_accepts_class_attribute_only_with_the_class():
    """ParamForeachFlow iterates a class attribute; a different class lacking it fails."""
    graph = FlowGraph(C.ParamForeachFlow)
    lint.check(graph, C.ParamForeachFlow)
    with pytest.raises(LintError, match=r"foreach over self\.values, but no step sets"):
        lint.check(graph, C.SplitFlow)


def test_check_stops_at_the_first_rule():
    # BadReserved would also pass every later rule; BadTwoNexts fails only the
    # single-next rule even though its tail is not a self.next() either.
    with pytest.raises(LintError, match="reserved name"):
        lint.check(FlowGraph(C.BadReserved))
    with pytest.raises(LintError, match="2 times"):
        lint.check(FlowGraph(C.BadTwoNexts))
